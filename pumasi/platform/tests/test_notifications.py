"""Notifications: in-app with a live unread event, e-mail per preference, one digest job per day,
unsubscribe links that work without signing in, follows and fan-out, activity feeds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from pumasi.core.errors import InvalidInput, NotFound
from pumasi.core.events import publish_event
from pumasi.platform import notifications
from pumasi.platform.models import DigestRun, Event, Follow, Notification, NotificationPreference


def test_notify_creates_a_personal_live_event_and_mails_instantly_when_asked(user, django_capture_on_commit_callbacks):
    notifications.set_preference(user=user, kind="company_message", email="instant")
    with django_capture_on_commit_callbacks(execute=True):
        first = notifications.notify(recipient=user, kind="company_message", title="Shipped", body="Tracking 123")
    event = Event.objects.filter(name="notifications.created").get()
    assert event.recipient_id == user.pk and event.payload["unread"] == 1 and event.payload["id"] == first.pk
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "Shipped" and mail.outbox[0].to == [user.email]
    assert "List-Unsubscribe" in mail.outbox[0].extra_headers
    assert not notifications.send_instant_email(first.pk)  # a retried job sends nothing twice
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify(recipient=user, kind="activity", title="Something happened")
    assert len(mail.outbox) == 1  # "activity" is daily by default
    assert notifications.unread_count(user) == 2
    assert notifications.mark_read(user=user, ids=[first.pk]) == 1
    assert notifications.unread_count(user) == 1


def test_bad_notifications_and_preferences_are_refused(user):
    with pytest.raises(InvalidInput) as bad:
        notifications.notify(recipient=user, kind="", title="")
    assert set(bad.value.field_errors) == {"kind", "title"}
    with pytest.raises(InvalidInput):
        notifications.set_preference(user=user, kind="x", email="hourly")
    assert not Notification.objects.exists() and not NotificationPreference.objects.exists()


def test_daily_digest_is_one_run_one_mail_per_person_and_respects_never(make_user):
    people = [make_user() for _ in range(3)]
    for person in people:
        notifications.notify(recipient=person, kind="activity", title="A")
        notifications.notify(recipient=person, kind="activity", title="B")
    notifications.set_preference(user=people[2], kind="activity", email="never")
    notifications.notify(recipient=people[2], kind="company_message", title="C")
    mail.outbox.clear()
    run = notifications.build_daily_digest(now=timezone.now() + timedelta(seconds=1))
    assert run.mails_sent == 3 and DigestRun.objects.count() == 1
    by_person = {m.to[0]: m for m in mail.outbox}
    assert set(by_person) == {p.email for p in people}
    assert "A" in by_person[people[0].email].body and "B" in by_person[people[0].email].body
    assert "C" in by_person[people[2].email].body and "* A" not in by_person[people[2].email].body
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()
    assert notifications.build_daily_digest(now=timezone.now() + timedelta(seconds=2)) is None  # same day: nothing
    assert len(mail.outbox) == 3


def test_unsubscribe_link_works_without_login_and_rejects_forgeries(user):
    token = notifications.unsubscribe_token(user, "activity")
    anonymous = Client()
    page = anonymous.get(f"/notifications/unsubscribe/{token}/")
    assert page.status_code == 200 and user.email in page.content.decode()
    assert not NotificationPreference.objects.exists()  # a GET (link preview) changes nothing
    done = anonymous.post(f"/notifications/unsubscribe/{token}/")
    assert done.status_code == 200
    assert NotificationPreference.objects.get(user=user, kind="activity").email == "never"
    assert anonymous.get(f"/notifications/unsubscribe/{token[:-2]}xx/").status_code == 404
    with pytest.raises(NotFound):
        notifications.unsubscribe("garbage")


def test_follow_fan_out_and_feeds(community, member_of, make_user, django_capture_on_commit_callbacks):
    follower = member_of(community)
    stranger = make_user()
    with pytest.raises(NotFound):
        notifications.follow(user=stranger, target_type="communities.community", target_id=community.pk)
    follow = notifications.follow(user=follower, target_type="communities.community", target_id=community.pk)
    assert notifications.follow(user=follower, target_type="communities.community", target_id=community.pk) == follow
    with pytest.raises(InvalidInput):
        notifications.follow(user=follower, target_type="nonsense", target_id="1")
    with pytest.raises(InvalidInput):
        notifications.follow(user=follower, target_type="accounts.user", target_id=follower.pk)
    with django_capture_on_commit_callbacks(execute=True):
        event = publish_event(name="governance.proposal_opened", community=community, payload={"id": 1})
    notice = Notification.objects.get(recipient=follower, kind="activity")
    assert notice.event_id == event.pk and community.name in notice.title
    assert Event.objects.filter(name="notifications.created", recipient=follower).exists()
    assert not Notification.objects.filter(recipient=community.organiser).exists()  # not a follower
    notifications.fan_out_to_followers(event)  # a retried job adds nothing
    assert Notification.objects.filter(recipient=follower).count() == 1

    assert [e.pk for e in notifications.community_feed(community)][:1] == [event.pk]
    assert event.pk in {e.pk for e in notifications.person_feed(follower)}
    assert event.pk not in {e.pk for e in notifications.person_feed(stranger)}
    notifications.unfollow(user=follower, follow_id=follow.pk)
    assert not Follow.objects.exists()


def test_notification_api_and_page(user, api_client_for):
    api = api_client_for(user)
    notifications.notify(recipient=user, kind="activity", title="Hello")
    page = api.get("/api/v1/notifications").json()
    assert page["items"][0]["title"] == "Hello"
    assert api.get("/api/v1/notifications/unread-count").json() == {"unread": 1}
    assert api.post("/api/v1/notifications/read", {}, content_type="application/json").json() == {"changed": 1, "unread": 0}
    bad = api.put("/api/v1/notifications/preferences", {"kind": "activity", "email": "weekly"},
                  content_type="application/json")
    assert bad.status_code == 422 and "email" in bad.json()["errors"]
    read_only = api_client_for(user, scopes=["read"])
    assert read_only.post("/api/v1/notifications/read", {}, content_type="application/json").status_code == 403
    browser = Client()
    browser.force_login(user)
    html = browser.get("/notifications/").content.decode()
    assert "Hello" in html and "data-unread-count" in html
