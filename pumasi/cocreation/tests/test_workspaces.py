"""Workspaces: open call and roles, versioned Markdown documents with conflicts, iCalendar feed."""

from __future__ import annotations

from datetime import date, timedelta

import icalendar
import pytest
from django.test import Client

from pumasi.cocreation import selectors, services
from pumasi.cocreation.models import DocumentVersion, WorkspaceActivity
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.platform import feeds as ical
from pumasi.platform.models import Event


@pytest.mark.django_db
def test_open_call_applications_and_expert_role(community, workspace, member_of, make_user):
    applicant = member_of(community)
    bystander = member_of(community)
    with pytest.raises(InvalidInput):
        services.apply_to_workspace(actor=applicant, workspace=workspace, motivation="짧음")
    application = services.apply_to_workspace(actor=applicant, workspace=workspace, motivation="패턴 제작 경험이 10년 있습니다.")
    with pytest.raises(Conflict):
        services.apply_to_workspace(actor=applicant, workspace=workspace, motivation="패턴 제작 경험이 10년 있습니다.")
    with pytest.raises(PermissionDenied):
        services.decide_application(actor=bystander, application=application, accept=True)
    services.decide_application(actor=community.organiser, application=application, accept=True)
    assert Event.objects.filter(name="cocreation.application_decided", recipient=applicant, payload__status="accepted").exists()
    doc = services.create_document(actor=applicant, workspace=workspace, title="계획", body="# 계획")
    # An outside expert: not a community member, limited role.
    expert = make_user(email="expert@example.org")
    with pytest.raises(InvalidInput):
        services.add_collaborator(actor=community.organiser, workspace=workspace, email="nobody@example.org")
    services.add_collaborator(actor=community.organiser, workspace=workspace, email="Expert@example.org")
    assert selectors.workspace_by_slug(expert, community.slug, workspace.pk, "view") == workspace
    services.save_document(actor=expert, document=doc, title="계획", body="# 계획\n\n전문가 의견", base_version=1)
    services.post_in_thread(actor=expert, thread=services.start_thread(actor=applicant, workspace=workspace, title="원단", body="어떤 원단?"),
                            body="울 추천")
    for forbidden in (
        lambda: services.create_document(actor=expert, workspace=workspace, title="x"),
        lambda: services.add_milestone(actor=expert, workspace=workspace, title="x", due_on=date.today()),
        lambda: services.start_thread(actor=expert, workspace=workspace, title="x", body="y"),
        lambda: selectors.workspace_by_slug(expert, community.slug, workspace.pk, "view_applications"),
    ):
        with pytest.raises(PermissionDenied):
            forbidden()
    with pytest.raises(NotFound):  # the expert sees nothing else of the community
        from pumasi.communities.selectors import community_for

        community_for(expert, community.slug)
    with pytest.raises(PermissionDenied):
        services.save_document(actor=bystander, document=doc, title="x", body="y", base_version=2)
    # Collaborators hear about activity they did not cause.
    assert Event.objects.filter(name="cocreation.workspace_notice", recipient=applicant, payload__verb="post").exists()
    assert not Event.objects.filter(name="cocreation.workspace_notice", recipient=expert, payload__verb="post").exists()
    assert WorkspaceActivity.objects.filter(workspace=workspace).count() >= 6


@pytest.mark.django_db
def test_every_save_is_a_version_and_stale_saves_conflict(community, workspace):
    organiser = community.organiser
    doc = services.create_document(actor=organiser, workspace=workspace, title="사양", body="소매: 긴팔\n색: 남색\n")
    services.save_document(actor=organiser, document=doc, title="사양", body="소매: 반팔\n색: 남색\n", base_version=1)
    with pytest.raises(Conflict) as exc:
        services.save_document(actor=organiser, document=doc, title="사양", body="소매: 긴팔\n색: 검정\n", base_version=1)
    assert exc.value.current.body == "소매: 반팔\n색: 남색\n" and exc.value.yours_body == "소매: 긴팔\n색: 검정\n"
    assert list(DocumentVersion.objects.filter(document=doc).values_list("number", flat=True)) == [1, 2]
    lines = selectors.diff(doc, 1, 2)
    assert ("remove", "-소매: 긴팔") in lines and ("add", "+소매: 반팔") in lines
    assert selectors.diff(doc, 2, 2) == []
    with pytest.raises(NotFound):
        selectors.diff(doc, 1, 9)
    with pytest.raises(InvalidInput):
        services.save_document(actor=organiser, document=doc, title="", body="x" * 200_001, base_version=2)


@pytest.mark.django_db
def test_conflict_over_the_api_is_a_409_with_both_texts(community, workspace, member_of, api_client_for):
    a, b = member_of(community), member_of(community)
    for person in (a, b):
        services.add_collaborator(actor=community.organiser, workspace=workspace, email=person.email, role="collaborator")
    base = f"/api/v1/communities/{community.slug}/workspaces/{workspace.pk}/documents"
    created = api_client_for(a).post(base, {"title": "노트", "body": "처음"}, content_type="application/json").json()
    url = f"{base}/{created['id']}"
    first = api_client_for(a).put(url, {"title": "노트", "body": "A의 수정", "base_version": 1}, content_type="application/json")
    assert first.status_code == 200 and first.json()["version"] == 2
    second = api_client_for(b).put(url, {"title": "노트", "body": "B의 수정", "base_version": 1}, content_type="application/json")
    assert second.status_code == 409 and second["Content-Type"] == "application/problem+json"
    problem = second.json()
    assert problem["current"] == {"version": 2, "title": "노트", "body": "A의 수정"}
    assert problem["yours"]["body"] == "B의 수정"
    diff = api_client_for(a).get(f"{url}/diff", {"from": 1, "to": 2}).json()
    assert {"kind": "add", "text": "+A의 수정"} in diff


@pytest.mark.django_db
def test_markdown_is_sanitised(community, workspace):
    doc = services.create_document(actor=community.organiser, workspace=workspace, title="위험",
                                   body="**굵게** <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>")
    assert "<strong>굵게</strong>" in doc.body_html
    for bad in ("<script", "javascript:", "onerror"):
        assert bad not in doc.body_html
    client = Client()
    client.force_login(community.organiser)
    page = client.get(f"/c/{community.slug}/workspaces/{workspace.pk}/docs/{doc.pk}/?edit=1").content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_ical_escaping_and_folding():
    assert ical.escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    long = "SUMMARY:" + "가" * 40
    folded = ical.fold(long)
    for line in folded.split("\r\n"):
        assert len(line.encode()) <= 75
    assert folded.replace("\r\n ", "") == long


@pytest.mark.django_db
def test_calendar_feed_parses_and_round_trips_every_milestone(community, workspace):
    start = date(2026, 3, 2)
    made = [
        services.add_milestone(actor=community.organiser, workspace=workspace, title=f"단계 {n}, 시제품; 검토 \\ 끝",
                               starts_on=start + timedelta(days=7 * n), due_on=start + timedelta(days=7 * n + 3),
                               description="긴 설명 " * 20 + "\n둘째 줄")
        for n in range(3)
    ]
    services.update_milestone(actor=community.organiser, milestone=made[0], done=True)
    response = Client().get(f"/cocreation/calendar/{workspace.pk}/{workspace.calendar_token}.ics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    raw = response.content
    assert b"\r\n" in raw and all(len(line) <= 75 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    cal = icalendar.Calendar.from_ical(raw)
    events = sorted(cal.walk("VEVENT"), key=lambda e: e.decoded("DTSTART"))
    assert len(events) == 3
    for event, milestone in zip(events, made, strict=True):
        assert str(event["SUMMARY"]).startswith(milestone.title)
        assert event.decoded("DTSTART") == milestone.starts_on
        assert event.decoded("DTEND") == milestone.due_on + timedelta(days=1)
        assert str(event["DESCRIPTION"]) == milestone.description
        assert str(event["UID"]).startswith(f"milestone-{milestone.pk}@")
    assert int(events[0]["SEQUENCE"]) == 1 and str(events[0]["SUMMARY"]).endswith("✓")
    old = workspace.calendar_token
    services.revoke_calendar_token(actor=community.organiser, workspace=workspace)
    assert Client().get(f"/cocreation/calendar/{workspace.pk}/{old}.ics").status_code == 404


@pytest.mark.django_db
def test_milestone_bad_input(community, workspace):
    with pytest.raises(InvalidInput) as exc:
        services.add_milestone(actor=community.organiser, workspace=workspace, title="", starts_on=date(2026, 5, 2),
                               due_on=date(2026, 5, 1))
    assert set(exc.value.field_errors) == {"title", "due_on"}


@pytest.mark.django_db
def test_workspace_pages(community, workspace, member_of):
    member = member_of(community)
    client = Client()
    client.force_login(member)
    page = client.get(f"/c/{community.slug}/workspaces/{workspace.pk}/")
    assert page.status_code == 200 and "Looking for pattern makers" in page.content.decode()
    assert client.get(f"/c/{community.slug}/workspaces/{workspace.pk}/docs/new/").status_code == 403
    client.post(f"/c/{community.slug}/workspaces/{workspace.pk}/apply/", {"motivation": "재봉을 잘 합니다. 참여하고 싶어요."})
    assert selectors.my_application(member, workspace).status == "pending"
    activity = client.get(f"/c/{community.slug}/workspaces/{workspace.pk}/activity/")
    assert activity.status_code == 403  # a member, but not inside yet
    organiser = Client()
    organiser.force_login(community.organiser)
    feed = organiser.get(f"/c/{community.slug}/workspaces/{workspace.pk}/activity/", HTTP_HX_REQUEST="true")
    assert feed.status_code == 200 and "<html" not in feed.content.decode()
