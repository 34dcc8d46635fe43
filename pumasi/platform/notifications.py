"""In-app notifications, e-mail per kind (instantly, in the daily digest, or never), signed
unsubscribe links, follows of members, communities or any object, and fan-out of events to followers.

The unread count is live: each new notification publishes a personal event (recipient=…) that
the event stream delivers to that person only. People who turned on Web Push on a device also get
it there (pumasi.platform.webpush), unless they turned push off for that kind. The daily digest is ONE job per period that walks
all unmailed notifications in recipient order and sends one mail per person.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import lru_cache, partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from pumasi.communities.models import Community, Membership, Role
from pumasi.core.errors import InvalidInput, NotFound
from pumasi.core.events import announce, publish_event
from pumasi.platform.models import (
    DigestRun,
    Event,
    Follow,
    Notification,
    NotificationPreference,
    PushSubscription,
)
from pumasi.platform.services import record_audit
from pumasi.platform.tasks import on_event_job, send_push_job

logger = logging.getLogger("pumasi.notifications")
UNSUBSCRIBE_SALT = "pumasi.notifications.unsubscribe"
DEFAULT_EMAIL = NotificationPreference.Email.DAILY
DEFAULT_PUSH = True
FOLLOWABLE = {"accounts.user", "communities.community"}  # plus any model named by an event's subject_type
DIGEST_CHUNK = 2000


def site_url() -> str:
    return getattr(settings, "PUMASI_SITE_URL", "") or "http://localhost:8000"


# --- Creating and reading notifications ---------------------------------------------------------


def _validate(kind: str, title: str, url: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not kind or len(kind) > 60:
        errors["kind"] = ["A kind of 1 to 60 characters is required."]
    if not title or len(title) > 200:
        errors["title"] = ["A title of 1 to 200 characters is required."]
    if len(url or "") > 500:
        errors["url"] = ["At most 500 characters."]
    return errors


def notify(*, recipient, kind: str, title: str, body: str = "", url: str = "", community: Community | None = None,
           event: Event | None = None) -> Notification:
    """Tell one person something: in-app at once, by e-mail as they prefer for this kind."""
    title = (title or "").strip()
    if errors := _validate(kind, title, url):
        raise InvalidInput("The notification was not created.", field_errors=errors)
    with transaction.atomic():
        notification = Notification.objects.create(recipient=recipient, community=community, kind=kind, title=title,
                                                   body=body or "", url=url or "", event=event)
        publish_event(name="notifications.created", recipient=recipient, community=None,
                      payload={"id": notification.pk, "title": title, "url": notification.url,
                               "unread": unread_count(recipient)})
        if email_choice(recipient, kind) == NotificationPreference.Email.INSTANT:
            transaction.on_commit(lambda: send_instant_email_job(notification.pk))
        if (PushSubscription.objects.filter(user=recipient, disabled_at__isnull=True).exists()
                and push_choice(recipient, kind)):
            transaction.on_commit(lambda: send_push_job(notification.pk))
    return notification


def notify_organisers(*, community: Community, kind: str, title: str, body: str = "", url: str = "") -> list[Notification]:
    organisers = get_user_model().objects.filter(memberships__community=community, memberships__role=Role.ORGANISER)
    return [notify(recipient=person, kind=kind, title=title, body=body, url=url, community=community)
            for person in organisers]


def notifications_of(user):
    return Notification.objects.filter(recipient=user).select_related("community").order_by("-id")


def unread_count(user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def mark_read(*, user, ids: list[int] | None = None) -> int:
    """Mark the given notifications (or all, when ids is None) read; returns how many changed."""
    with transaction.atomic():
        query = Notification.objects.filter(recipient=user, read_at__isnull=True)
        if ids is not None:
            query = query.filter(pk__in=ids)
        changed = query.update(read_at=timezone.now())
        if changed:
            publish_event(name="notifications.read", recipient=user, payload={"unread": unread_count(user)})
    return changed


# --- E-mail preferences and unsubscribe ---------------------------------------------------------


def email_choice(user, kind: str) -> str:
    return (NotificationPreference.objects.filter(user=user, kind=kind).values_list("email", flat=True).first()
            or DEFAULT_EMAIL)


def preferences_of(user) -> dict[str, str]:
    return dict(NotificationPreference.objects.filter(user=user).values_list("kind", "email"))


def push_choice(user, kind: str) -> bool:
    found = NotificationPreference.objects.filter(user=user, kind=kind).values_list("push", flat=True).first()
    return DEFAULT_PUSH if found is None else found


def push_preferences_of(user) -> dict[str, bool]:
    return dict(NotificationPreference.objects.filter(user=user).values_list("kind", "push"))


def set_preference(*, user, kind: str, email: str | None = None, push: bool | None = None) -> NotificationPreference:
    """Set the e-mail choice, the push choice, or both, for one kind; what is not given stays."""
    errors: dict[str, list[str]] = {}
    if not kind or len(kind) > 60:
        errors["kind"] = ["A kind of 1 to 60 characters is required."]
    if email is None and push is None:
        errors["email"] = [_("Give an e-mail choice, a push choice, or both.")]
    elif email is not None and email not in NotificationPreference.Email.values:
        errors["email"] = [f"Choose one of: {', '.join(NotificationPreference.Email.values)}."]
    if push is not None and not isinstance(push, bool):
        errors["push"] = [_("Push is on (true) or off (false).")]
    if errors:
        raise InvalidInput("The preference was not saved.", field_errors=errors)
    changes = {k: v for k, v in (("email", email), ("push", push)) if v is not None}
    with transaction.atomic():
        pref, _created = NotificationPreference.objects.update_or_create(user=user, kind=kind, defaults=changes)
        record_audit(actor=user, action="notification_pref.set", obj=pref, changes={"kind": kind, **changes})
    return pref


def unsubscribe_token(user, kind: str) -> str:
    return signing.dumps({"u": user.pk, "k": kind}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(user, kind: str) -> str:
    return f"{site_url()}{_unsubscribe_prefix()}{unsubscribe_token(user, kind)}/"


@lru_cache(maxsize=1)
def _unsubscribe_prefix() -> str:
    # Resolved once: a digest builds one link per person and kind, and reverse() per link cost
    # more than rendering the mail (bench/platform).
    return reverse("platform:unsubscribe", args=["TOKEN"]).removesuffix("TOKEN/")


def read_unsubscribe_token(token: str) -> tuple[object, str]:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature as exc:
        raise NotFound("This unsubscribe link is not valid.") from exc
    user = get_user_model().objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None or not isinstance(data.get("k"), str):
        raise NotFound("This unsubscribe link is not valid.")
    return user, data["k"]


def unsubscribe(token: str) -> NotificationPreference:
    """Works without signing in: the signed token names the person and the kind."""
    user, kind = read_unsubscribe_token(token)
    return set_preference(user=user, kind=kind, email=NotificationPreference.Email.NEVER)


# --- Sending -------------------------------------------------------------------------------------


def _mail_for(user, notifications: list[Notification], *, digest: bool) -> EmailMultiAlternatives:
    language = user.language or "ko"
    with translation.override(language):
        kinds = sorted({n.kind for n in notifications})
        context = {"user": user, "notifications": notifications, "digest": digest, "site": site_url(),
                   "unsubscribe": {kind: unsubscribe_url(user, kind) for kind in kinds}}
        subject = (_("Your pumasi digest: %(count)d new") % {"count": len(notifications)} if digest
                   else notifications[0].title)
        text = render_to_string("platform/email/notifications.txt", context)
        html = render_to_string("platform/email/notifications.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[user.email])
    message.attach_alternative(html, "text/html")
    first = context["unsubscribe"][kinds[0]]
    message.extra_headers = {"List-Unsubscribe": f"<{first}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return message


@db_task(retries=3, retry_delay=60)
def send_instant_email_job(notification_id: int) -> None:
    send_instant_email(notification_id)


def send_instant_email(notification_id: int) -> bool:
    """Mail one notification; the conditional update makes a retried job send nothing twice."""
    notification = Notification.objects.select_related("recipient").filter(pk=notification_id).first()
    if notification is None or notification.emailed_at is not None:
        return False
    claimed = Notification.objects.filter(pk=notification_id, emailed_at__isnull=True).update(emailed_at=timezone.now())
    if not claimed:
        return False
    try:
        _mail_for(notification.recipient, [notification], digest=False).send()
    except Exception:
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)  # let the retry try again
        raise
    return True


def build_daily_digest(*, period: date | None = None, now: datetime | None = None) -> DigestRun | None:
    """One run per day for everybody: each person with unmailed notifications of "daily" kinds gets
    one mail; "never" kinds are marked done without mail. A second run for the same day does nothing."""
    now = now or timezone.now()
    period = period or timezone.localdate(now)
    try:
        with transaction.atomic():
            run = DigestRun.objects.create(period=f"daily:{period.isoformat()}")
    except IntegrityError:
        return None
    pending = Notification.objects.filter(emailed_at__isnull=True, created_at__lte=now)
    recipient_ids = list(pending.order_by("recipient_id").values_list("recipient_id", flat=True).distinct())
    connection = get_connection()
    sent = 0
    for start in range(0, len(recipient_ids), DIGEST_CHUNK):
        batch = recipient_ids[start:start + DIGEST_CHUNK]
        prefs = {(uid, kind): email for uid, kind, email in
                 NotificationPreference.objects.filter(user_id__in=batch).values_list("user_id", "kind", "email")}
        by_person: dict[int, list[Notification]] = {}
        for notification in (pending.filter(recipient_id__in=batch).select_related("recipient", "community")
                             .order_by("recipient_id", "id")):
            by_person.setdefault(notification.recipient_id, []).append(notification)
        messages, done_ids = [], []
        for uid, items in by_person.items():
            daily, never = [], []
            for n in items:
                choice = prefs.get((uid, n.kind), DEFAULT_EMAIL)
                if choice == NotificationPreference.Email.DAILY:
                    daily.append(n)
                elif choice == NotificationPreference.Email.NEVER:
                    never.append(n.pk)
            done_ids.extend(never)
            if daily and daily[0].recipient.is_active:
                messages.append(_mail_for(daily[0].recipient, daily, digest=True))
                done_ids.extend(n.pk for n in daily)
        if messages:
            sent += connection.send_messages(messages) or 0
        Notification.objects.filter(pk__in=done_ids).update(emailed_at=now)
    DigestRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), mails_sent=sent)
    run.refresh_from_db()
    return run


# Huey's crontab runs in UTC: 22:00 UTC is 07:00 in Seoul, the default community time zone.
@db_periodic_task(crontab(hour="22", minute="0"))
def daily_digest_job() -> None:
    build_daily_digest()


# --- Follows and fan-out --------------------------------------------------------------------------


def resolve_target(target_type: str, target_id: str):
    """The object named by "app_label.model" and its id, or InvalidInput."""
    try:
        app_label, model = (target_type or "").lower().split(".", 1)
        content_type = ContentType.objects.get(app_label=app_label, model=model)
    except (ValueError, ContentType.DoesNotExist) as exc:
        raise InvalidInput("Nothing to follow.", field_errors={"target_type": ["Use app_label.model, e.g. communities.community."]}) from exc
    model_class = content_type.model_class()
    target = model_class.objects.filter(pk=target_id).first() if model_class else None
    if target is None:
        raise NotFound("Nothing to follow there.")
    return content_type, target


def _may_see(user, target) -> bool:
    if isinstance(target, Community):
        return target.open_join or Membership.objects.filter(community=target, user=user).exists()
    if isinstance(target, get_user_model()):
        # members may follow people they share a community with
        return target.pk == user.pk or Membership.objects.filter(
            user=target, community__memberships__user=user).exists()
    community = getattr(target, "community", None)
    if isinstance(community, Community):
        return Membership.objects.filter(community=community, user=user).exists()
    return False


def follow(*, user, target_type: str, target_id: str) -> Follow:
    content_type, target = resolve_target(target_type, str(target_id))
    if not _may_see(user, target):
        raise NotFound("Nothing to follow there.")
    if isinstance(target, get_user_model()) and target.pk == user.pk:
        raise InvalidInput("You cannot follow yourself.", field_errors={"target_id": ["That is you."]})
    with transaction.atomic():
        found, created = Follow.objects.get_or_create(follower=user, content_type=content_type, object_id=str(target.pk))
        if created:
            record_audit(actor=user, action="follow.created", obj=found,
                         changes={"target": f"{content_type.app_label}.{content_type.model}:{target.pk}"})
    return found


def unfollow(*, user, follow_id: int) -> None:
    with transaction.atomic():
        found = Follow.objects.filter(pk=follow_id, follower=user).first()
        if found is None:
            raise NotFound("No such follow.")
        record_audit(actor=user, action="follow.deleted", obj=found)
        found.delete()


def follows_of(user):
    return Follow.objects.filter(follower=user).select_related("content_type").order_by("-id")


def followers_of(content_type: ContentType, object_id) -> list[int]:
    return list(Follow.objects.filter(content_type=content_type, object_id=str(object_id))
                .values_list("follower_id", flat=True))


def event_title(event: Event) -> str:
    label = event.name.replace(".", " · ").replace("_", " ")
    return f"{event.community.name}: {label}" if event.community else label


@on_event_job("*")
def fan_out_to_followers(event: Event) -> int:
    """Job-side: followers of the event's community, and of its subject (payload subject_type and
    subject_id, e.g. "cocreation.workspace" and 12), get an in-app "activity" notification. One bulk
    insert for the notifications and one for their live-count events, then a single wake-up."""
    if event.community_id is None or event.recipient_id is not None or event.name.startswith("notifications."):
        return 0
    community_type = ContentType.objects.get_for_model(Community)
    targets = Q(content_type=community_type, object_id=str(event.community_id))
    payload = event.payload or {}
    if isinstance(payload.get("subject_type"), str) and payload.get("subject_id") is not None:
        try:
            app_label, model = payload["subject_type"].lower().split(".", 1)
            subject_type = ContentType.objects.get(app_label=app_label, model=model)
            targets |= Q(content_type=subject_type, object_id=str(payload["subject_id"]))
        except (ValueError, ContentType.DoesNotExist):
            pass
    follower_ids = set(Follow.objects.filter(targets).values_list("follower_id", flat=True))
    if not follower_ids:
        return 0
    title = event_title(event)[:200]
    url = f"/c/{event.community.slug}/"
    with transaction.atomic():
        Notification.objects.bulk_create(
            [Notification(recipient_id=uid, community_id=event.community_id, kind="activity", title=title, url=url,
                          event=event) for uid in follower_ids],
            ignore_conflicts=True, batch_size=2000,
        )
        Event.objects.bulk_create(
            [Event(name="notifications.created", recipient_id=uid, payload={"title": title, "url": url, "bulk": True})
             for uid in follower_ids],
            batch_size=2000,
        )
        transaction.on_commit(lambda: announce(Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0))
    instant = set(NotificationPreference.objects.filter(user_id__in=follower_ids, kind="activity",
                                                        email=NotificationPreference.Email.INSTANT)
                  .values_list("user_id", flat=True))
    for notification_id in Notification.objects.filter(event=event, kind="activity", recipient_id__in=instant).values_list("pk", flat=True):
        send_instant_email_job(notification_id)
    # Web Push only for followers with an active device who did not turn push off for "activity";
    # subqueries rather than a list of ids, so 40,000 followers stay one query.
    to_push = (Notification.objects.filter(event=event, kind="activity")
               .filter(Exists(PushSubscription.objects.filter(user_id=OuterRef("recipient_id"), disabled_at__isnull=True)))
               .exclude(Exists(NotificationPreference.objects.filter(user_id=OuterRef("recipient_id"), kind="activity",
                                                                     push=False))))
    for notification_id in to_push.values_list("pk", flat=True):
        transaction.on_commit(partial(send_push_job, notification_id))
    return len(follower_ids)


# --- Activity feeds ------------------------------------------------------------------------------


def community_feed(community: Community):
    """What happened in a community: its events that were not personal."""
    return (Event.objects.filter(community=community, recipient__isnull=True)
            .exclude(name__startswith="notifications.").select_related("community").order_by("-id"))


def person_feed(user):
    """What happened in the communities a person belongs to or follows, and around what they follow."""
    community_type = ContentType.objects.get_for_model(Community)
    followed = Follow.objects.filter(follower=user, content_type=community_type).values_list("object_id", flat=True)
    member_of = Membership.objects.filter(user=user).values_list("community_id", flat=True)
    followed_ids = [int(x) for x in followed if str(x).isdigit()]
    return (Event.objects.filter(Q(community_id__in=member_of) | Q(community_id__in=followed_ids, community__open_join=True),
                                 recipient__isnull=True)
            .exclude(name__startswith="notifications.").select_related("community").order_by("-id"))


@on_event_job("*")
def notify_personal_event(event: Event) -> Notification | None:
    """Job-side: every event addressed to one person (`publish_event(recipient=…)`) from any app
    also becomes an in-app notification, so one page, one unread count and one digest cover them
    all. Apps that call `notify` themselves for the same event are not notified twice: the
    (recipient, event, kind) constraint and the check below make this safe to run again."""
    if event.recipient_id is None or event.name.startswith("notifications."):
        return None
    if Notification.objects.filter(recipient_id=event.recipient_id, event=event).exists():
        return None
    payload = event.payload or {}
    title = str(payload.get("title") or payload.get("summary") or event_title(event))[:200]
    url = payload.get("url") if isinstance(payload.get("url"), str) else ""
    if url and not url.startswith("/"):
        url = ""
    recipient = get_user_model().objects.filter(pk=event.recipient_id, is_active=True).first()
    if recipient is None:
        return None
    try:
        return notify(recipient=recipient, kind=event.name[:60], title=title or event.name, url=url[:500],
                      community=event.community, event=event)
    except IntegrityError:  # a concurrent run made it first
        return None
