"""Browser flows of co-creation (Debian chromium via Playwright, phone-sized, Korean UI)."""

from __future__ import annotations

import pytest

from pumasi.cocreation import services
from pumasi.cocreation.models import Idea, WorkspaceDocument
from pumasi.tests.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def people(transactional_db):
    community = CommunityFactory(slug="threads")
    organiser, author, fan = UserFactory(display_name="운영자", language="ko"), UserFactory(display_name="작성자", language="ko"), UserFactory(display_name="지지자", language="ko")
    MembershipFactory(community=community, user=organiser, role="organiser")
    for person in (author, fan):
        MembershipFactory(community=community, user=person, role="member")
    return community, organiser, author, fan


def test_idea_support_comment_accept_and_notification(new_context, people):
    community, organiser, author, fan = people
    board = services.create_board(actor=organiser, community=community, title="다음 시즌", question="무엇을 만들까요?")
    page = new_context("ko", author).new_page()
    page.goto(f"/c/{community.slug}/ideas/b/{board.pk}/new/")
    page.get_by_label("제목").fill("방수 재킷")
    page.get_by_label("아이디어 내용").fill("접히는 방수 재킷을 만들어 주세요")
    page.get_by_role("button", name="저장").click()
    page.wait_for_url("**/ideas/*/")
    idea = Idea.objects.get(title="방수 재킷")
    fan_page = new_context("ko", fan).new_page()
    fan_page.goto(f"/c/{community.slug}/ideas/{idea.pk}/")
    fan_page.get_by_role("button", name="지지하기").click()
    fan_page.get_by_text("지지 1명").wait_for()
    fan_page.locator("#id_body").fill("저도 원해요")
    fan_page.get_by_role("button", name="댓글", exact=True).click()
    fan_page.get_by_text("저도 원해요").wait_for()
    org_page = new_context("ko", organiser).new_page()
    org_page.goto(f"/c/{community.slug}/ideas/{idea.pk}/")
    org_page.get_by_label("새 상태").select_option("accepted")
    org_page.get_by_label("공식 답변").fill("가을 시즌에 만듭니다")
    org_page.get_by_role("button", name="상태 변경 후 지지자에게 알리기").click()
    org_page.get_by_text("가을 시즌에 만듭니다").first.wait_for()
    fan_page.goto("/cocreation/notifications/")
    fan_page.locator(".notification").filter(has_text="가을 시즌에 만듭니다").wait_for()


def test_answer_survey_then_see_chart(new_context, people):
    community, organiser, _author, fan = people
    survey = services.create_survey(actor=organiser, community=community, title="만족도", results_visible_to_respondents=True,
                                    questions=[{"kind": "likert", "prompt": "만족하십니까?"},
                                               {"kind": "single", "prompt": "색상", "choices": ["남색", "검정"]}])
    page = new_context("ko", fan).new_page()
    page.goto(f"/c/{community.slug}/surveys/{survey.pk}/")
    page.get_by_role("button", name="답변 보내기").click()
    page.locator(".error").first.wait_for()  # required questions refused, nothing saved
    page.get_by_label("4").check()
    page.get_by_label("남색").check()
    page.get_by_role("button", name="답변 보내기").click()
    page.get_by_text("이 설문에 응답하셨습니다").wait_for()
    page.get_by_role("link", name="결과 보기").click()
    assert page.locator("svg.chart").count() >= 3
    assert page.locator("table th[scope=row]", has_text="남색").count() == 1


def test_two_browsers_edit_one_document_conflict_keeps_both(new_context, people):
    community, organiser, author, fan = people
    workspace = services.create_workspace(actor=organiser, community=community, title="재킷")
    for person in (author, fan):
        services.add_collaborator(actor=organiser, workspace=workspace, email=person.email, role="collaborator")
    doc = services.create_document(actor=organiser, workspace=workspace, title="사양", body="원단: 나일론")
    url = f"/c/{community.slug}/workspaces/{workspace.pk}/docs/{doc.pk}/?edit=1"
    one, two = new_context("ko", author).new_page(), new_context("ko", fan).new_page()
    one.goto(url)
    two.goto(url)
    one.get_by_label("본문 (마크다운)").fill("원단: 재생 나일론")
    one.get_by_role("button", name="새 버전으로 저장").click()
    one.get_by_text("새 버전으로 저장했습니다").wait_for()
    two.get_by_label("본문 (마크다운)").fill("원단: 면")
    two.get_by_role("button", name="새 버전으로 저장").click()
    two.get_by_text("편집 충돌").wait_for()
    assert two.get_by_label("상대의 글 (읽기 전용)").input_value() == "원단: 재생 나일론"
    assert two.get_by_label("본문 (마크다운)").input_value() == "원단: 면"
    assert WorkspaceDocument.objects.get(pk=doc.pk).body == "원단: 재생 나일론"
    two.get_by_role("button", name="새 버전으로 저장").click()  # resolved: saved on top of version 2
    two.get_by_text("새 버전으로 저장했습니다").wait_for()
    assert WorkspaceDocument.objects.get(pk=doc.pk).version == 3
