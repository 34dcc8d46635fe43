"""Idea boards: workflow with official answers, support once, threads, merge, sorting, queries."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pumasi.cocreation import selectors, services
from pumasi.cocreation.models import Idea, IdeaComment, IdeaSupport
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.platform.models import AuditEntry, Event


def _idea(board, author, title="주차공간을 늘려주세요", body="골목 끝 빈 땅을 주차공간으로 만들어 주세요."):
    return services.create_idea(actor=author, board=board, title=title, body=body, category="주차")


@pytest.mark.django_db
def test_support_once_withdraw_and_database_constraint(community, board, member_of):
    author, fan = member_of(community), member_of(community)
    idea = _idea(board, author)
    idea = services.support_idea(actor=fan, idea=idea)
    assert idea.support_count == 1
    with pytest.raises(Conflict) as exc:
        services.support_idea(actor=fan, idea=idea)
    assert exc.value.code == "already_supported"
    assert Idea.objects.get(pk=idea.pk).support_count == 1
    # The rule holds in the database too, not only in Python.
    with pytest.raises(IntegrityError), transaction.atomic():
        IdeaSupport.objects.create(idea=idea, user=fan)
    idea = services.withdraw_support(actor=fan, idea=idea)
    assert idea.support_count == 0
    with pytest.raises(Conflict):
        services.withdraw_support(actor=fan, idea=idea)
    assert AuditEntry.objects.filter(action="idea.support_withdrawn").count() == 1


@pytest.mark.django_db
def test_workflow_notifies_supporters_with_the_official_answer(community, board, member_of):
    author, fan, bystander = member_of(community), member_of(community), member_of(community)
    idea = _idea(board, author)
    services.support_idea(actor=fan, idea=idea)
    with pytest.raises(PermissionDenied):
        services.change_idea_status(actor=fan, idea=idea, status="accepted", answer="yes")
    with pytest.raises(InvalidInput) as exc:
        services.change_idea_status(actor=community.organiser, idea=idea, status="accepted", answer="   ")
    assert "answer" in exc.value.field_errors
    services.change_idea_status(actor=community.organiser, idea=idea, status="under_review", answer="검토하겠습니다")
    services.change_idea_status(actor=community.organiser, idea=idea, status="accepted", answer="내년 예산에 반영")
    with pytest.raises(Conflict):
        services.change_idea_status(actor=community.organiser, idea=idea, status="new", answer="back")
    services.change_idea_status(actor=community.organiser, idea=idea, status="implemented", answer="완료")
    with pytest.raises(Conflict):
        services.change_idea_status(actor=community.organiser, idea=idea, status="declined", answer="no")
    notes = Event.objects.filter(name="cocreation.idea_status_changed", recipient=fan).order_by("pk")
    assert [n.payload["status"] for n in notes] == ["under_review", "accepted", "implemented"]
    assert notes[1].payload["answer"] == "내년 예산에 반영"
    assert Event.objects.filter(name="cocreation.idea_status_changed", recipient=author).count() == 3
    assert not Event.objects.filter(name="cocreation.idea_status_changed", recipient=bystander).exists()
    assert selectors.idea(community, idea.pk).official_answer == "완료"


@pytest.mark.django_db
def test_threaded_comments_notify_author_and_parent(community, board, member_of):
    author, a, b = member_of(community), member_of(community), member_of(community)
    idea = _idea(board, author)
    first = services.comment_on_idea(actor=a, idea=idea, body="좋아요")
    reply = services.comment_on_idea(actor=b, idea=idea, body="저도요", parent=first)
    services.comment_on_idea(actor=a, idea=idea, body="감사", parent=reply)
    flat = selectors.flatten(selectors.comment_tree(idea))
    assert [(c.body, depth) for c, depth in flat] == [("좋아요", 0), ("저도요", 1), ("감사", 2)]
    assert Event.objects.filter(name="cocreation.idea_commented", recipient=author).count() == 3
    assert Event.objects.filter(name="cocreation.idea_commented", recipient=a).count() == 1  # b replied to a
    other = _idea(board, author, title="다른 아이디어")
    with pytest.raises(InvalidInput):
        services.comment_on_idea(actor=a, idea=other, body="x", parent=first)
    with pytest.raises(InvalidInput):
        services.comment_on_idea(actor=a, idea=idea, body=" \n ")
    with pytest.raises(InvalidInput):
        services.comment_on_idea(actor=a, idea=idea, body="가" * 5001)
    assert Idea.objects.get(pk=idea.pk).comment_count == 3


@pytest.mark.django_db
def test_merge_carries_supports_once_per_person_and_comments(community, board, member_of):
    author = member_of(community)
    both, only_dup, only_main = member_of(community), member_of(community), member_of(community)
    main, dup = _idea(board, author), _idea(board, author, title="주차 자리 더 만들기")
    for person in (both, only_main):
        services.support_idea(actor=person, idea=main)
    for person in (both, only_dup):
        services.support_idea(actor=person, idea=dup)
    services.comment_on_idea(actor=only_dup, idea=dup, body="중복 같아요")
    target = services.merge_ideas(actor=community.organiser, source=dup, target=main, answer="같은 제안이라 합칩니다")
    assert target.support_count == 3
    assert set(IdeaSupport.objects.filter(idea=main).values_list("user_id", flat=True)) == {both.pk, only_dup.pk, only_main.pk}
    assert IdeaComment.objects.filter(idea=main).count() == 1
    dup.refresh_from_db()
    assert dup.status == "merged" and dup.merged_into_id == main.pk and dup.support_count == 0
    with pytest.raises(Conflict):
        services.support_idea(actor=only_main, idea=dup)
    with pytest.raises(Conflict):
        services.merge_ideas(actor=community.organiser, source=dup, target=main)
    with pytest.raises(InvalidInput):
        services.merge_ideas(actor=community.organiser, source=main, target=main)
    assert Event.objects.filter(name="cocreation.idea_status_changed", recipient=only_dup, payload__status="merged").exists()


@pytest.mark.django_db
def test_sorting_and_filters(community, board, member_of):
    author = member_of(community)
    fans = [member_of(community) for _ in range(3)]
    old_popular = _idea(board, author, title="인기 많은 아이디어")
    newest = _idea(board, author, title="새 아이디어")
    for fan in fans:
        services.support_idea(actor=fan, idea=old_popular)
    services.change_idea_status(actor=community.organiser, idea=newest, status="declined", answer="어렵습니다")
    assert [i.pk for i in selectors.ideas(board, sort="new")] == [newest.pk, old_popular.pk]
    assert [i.pk for i in selectors.ideas(board, sort="supported")] == [old_popular.pk, newest.pk]
    assert [i.pk for i in selectors.ideas(board, sort="trending")][0] == old_popular.pk
    assert [i.pk for i in selectors.ideas(board, status="declined")] == [newest.pk]
    assert list(selectors.ideas(board, category="안전")) == []
    listed = selectors.ideas(board, user=fans[0], sort="supported")
    assert [i.supported for i in listed] == [True, False]
    with pytest.raises(InvalidInput):
        selectors.ideas(board, sort="random")


@pytest.mark.django_db
def test_idea_list_query_count_is_constant_whatever_the_page_size(community, board, member_of):
    author, fan = member_of(community), member_of(community)
    client = Client()
    client.force_login(fan)
    for n in range(60):
        idea = _idea(board, author, title=f"아이디어 {n}")
        if n % 3 == 0:
            services.support_idea(actor=fan, idea=idea)
    url = reverse("cocreation:board", args=[community.slug, board.pk])
    counts = {}
    for size in (10, 50):
        for sort in ("new", "supported", "trending"):
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(url, {"size": size, "sort": sort})
            assert response.status_code == 200
            counts[(size, sort)] = len(ctx.captured_queries)
    assert counts[(10, "new")] == counts[(50, "new")]
    assert counts[(10, "supported")] == counts[(50, "supported")]
    assert counts[(10, "trending")] == counts[(50, "trending")]
    api = Client()
    api.force_login(fan)
    api_url = f"/api/v1/communities/{community.slug}/idea-boards/{board.pk}/ideas"
    api_counts = []
    for limit in (5, 50):
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(api_url, {"limit": limit}).status_code == 200
        api_counts.append(len(ctx.captured_queries))
    assert api_counts[0] == api_counts[1]


@pytest.mark.django_db
def test_bad_input_writes_nothing(community, board, member_of):
    author = member_of(community)
    with pytest.raises(InvalidInput) as exc:
        services.create_idea(actor=author, board=board, title="", body="가" * 10001, category="없는분류")
    assert set(exc.value.field_errors) == {"title", "body", "category"}
    observer = member_of(community, role="observer")
    with pytest.raises(PermissionDenied):
        _idea(board, observer)
    outsider_board_user = member_of(community)
    outsider = type(outsider_board_user).objects.create_user(email="out@example.com", password="x")
    with pytest.raises(NotFound):
        _idea(board, outsider)
    assert Idea.objects.count() == 0


@pytest.mark.django_db
def test_images_are_validated_and_reencoded_without_metadata(community, board, member_of):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    author = member_of(community)
    fake = SimpleUploadedFile("evil.png", b"<script>alert(1)</script>", content_type="image/png")
    with pytest.raises(InvalidInput) as exc:
        services.create_idea(actor=author, board=board, title="사진", body="사진 첨부", images=[fake])
    assert "images" in exc.value.field_errors
    big = SimpleUploadedFile("big.jpg", b"0" * (5 * 1024 * 1024 + 1), content_type="image/jpeg")
    with pytest.raises(InvalidInput):
        services.create_idea(actor=author, board=board, title="사진", body="사진 첨부", images=[big])
    assert Idea.objects.count() == 0
    raw = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    Image.new("RGB", (3000, 2000), "red").save(raw, format="JPEG", exif=exif)
    photo = SimpleUploadedFile("photo.jpg", raw.getvalue(), content_type="image/jpeg")
    idea = services.create_idea(actor=author, board=board, title="사진", body="사진 첨부", images=[photo])
    stored = idea.images.get()
    assert (stored.width, stored.height) == (1600, 1067)
    with Image.open(stored.image.path) as reopened:
        assert not reopened.getexif()


@pytest.mark.django_db
def test_script_in_user_text_is_escaped_on_the_page(community, board, member_of):
    author = member_of(community)
    idea = services.create_idea(actor=author, board=board, title="<script>alert('t')</script>",
                                body="<img src=x onerror=alert(1)> 본문")
    services.comment_on_idea(actor=author, idea=idea, body="<script>alert('c')</script>")
    client = Client()
    client.force_login(author)
    html = client.get(reverse("cocreation:idea", args=[community.slug, idea.pk])).content.decode()
    assert "<script>alert(" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_api_flow_support_twice_is_a_409_problem(community, board, member_of, api_client_for):
    author, fan = member_of(community), member_of(community)
    api_author, api_fan = api_client_for(author), api_client_for(fan)
    base = f"/api/v1/communities/{community.slug}"
    created = api_author.post(f"{base}/idea-boards/{board.pk}/ideas", {"title": "벤치", "body": "벤치를 놓아주세요"},
                              content_type="application/json")
    assert created.status_code == 201, created.content
    idea_id = created.json()["id"]
    assert api_fan.post(f"{base}/ideas/{idea_id}/support").json()["support_count"] == 1
    again = api_fan.post(f"{base}/ideas/{idea_id}/support")
    assert again.status_code == 409 and again["Content-Type"] == "application/problem+json"
    bad = api_author.post(f"{base}/idea-boards/{board.pk}/ideas", {"title": "", "body": ""}, content_type="application/json")
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"title", "body"}
    read_only = api_client_for(fan, scopes=["read"])
    assert read_only.post(f"{base}/ideas/{idea_id}/comments", {"body": "x"}, content_type="application/json").status_code == 403
    comment = api_fan.post(f"{base}/ideas/{idea_id}/comments", {"body": "좋아요"}, content_type="application/json")
    assert comment.status_code == 201
    status = api_client_for(community.organiser).post(f"{base}/ideas/{idea_id}/status",
                                                      {"status": "accepted", "answer": "좋습니다"}, content_type="application/json")
    assert status.json()["status"] == "accepted"
    notes = api_fan.get("/api/v1/cocreation/notifications").json()
    assert notes[0]["name"] == "cocreation.idea_status_changed" and notes[0]["payload"]["answer"] == "좋습니다"


@pytest.mark.django_db
def test_trending_counts_only_the_last_week(community, board, member_of):
    from datetime import timedelta

    from django.utils import timezone

    author = member_of(community)
    fans = [member_of(community) for _ in range(3)]
    once_popular = _idea(board, author, title="예전에 인기 있던 아이디어")
    rising = _idea(board, author, title="요즘 뜨는 아이디어")
    quiet = _idea(board, author, title="조용한 아이디어")
    for fan in fans:
        services.support_idea(actor=fan, idea=once_popular)
    IdeaSupport.objects.filter(idea=once_popular).update(created_at=timezone.now() - timedelta(days=selectors.TRENDING_DAYS + 1))
    services.support_idea(actor=fans[0], idea=rising)
    trending = list(selectors.ideas(board, sort="trending"))
    assert [i.pk for i in trending] == [rising.pk, once_popular.pk, quiet.pk]
    assert [i.recent for i in trending] == [1, 0, 0]
    assert [i.pk for i in selectors.ideas(board, sort="supported")] == [once_popular.pk, rising.pk, quiet.pk]
