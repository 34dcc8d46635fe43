"""Write path for communities: create, edit, invite, join, leave, change roles."""

from __future__ import annotations

import re
import secrets
import zoneinfo
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from pumasi.communities import permissions
from pumasi.communities.models import Community, Invitation, Membership, Role
from pumasi.core.errors import Conflict, InvalidInput, NotFound
from pumasi.core.events import publish_event
from pumasi.platform.services import record_audit

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,58}[a-z0-9]$")
CURRENCIES = {"KRW", "USD", "EUR", "JPY", "CNY", "GBP"}
RESERVED_SLUGS = {"new", "api", "admin", "join", "accounts", "static", "media", "events"}
MAX_INVITATION_DAYS = 90


def _validate_settings(*, name, slug, kind, time_zone, currency) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if name is not None and not (1 <= len(name.strip()) <= 120):
        errors["name"] = [_("Give a name of 1 to 120 characters.")]
    if slug is not None and (not SLUG_RE.match(slug) or slug in RESERVED_SLUGS):
        errors["slug"] = [_("3 to 60 lower-case letters, digits or hyphens, not starting or ending with a hyphen.")]
    if kind is not None and kind not in Community.Kind.values:
        errors["kind"] = [_("Choose one of: %(choices)s.") % {"choices": ", ".join(Community.Kind.values)}]
    if time_zone is not None:
        try:
            zoneinfo.ZoneInfo(time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = [_("Unknown time zone; use a name such as Asia/Seoul.")]
    if currency is not None and currency not in CURRENCIES:
        errors["currency"] = [_("Choose one of: %(choices)s.") % {"choices": ", ".join(sorted(CURRENCIES))}]
    return errors


def create_community(
    *, actor, name: str, slug: str, kind: str, description: str = "", time_zone: str = "Asia/Seoul",
    currency: str = "KRW", open_join: bool = False,
) -> Community:
    """Create a community; its creator becomes its first organiser."""
    errors = _validate_settings(name=name, slug=slug, kind=kind, time_zone=time_zone, currency=currency)
    if not errors and Community.objects.filter(slug=slug).exists():
        errors["slug"] = [_("This address is taken.")]
    if errors:
        raise InvalidInput(_("The community was not created."), field_errors=errors)
    try:
        with transaction.atomic():
            community = Community.objects.create(
                name=name.strip(), slug=slug, kind=kind, description=description.strip(), time_zone=time_zone,
                currency=currency, open_join=open_join,
            )
            Membership.objects.create(community=community, user=actor, role=Role.ORGANISER)
            record_audit(
                actor=actor, action="community.created", obj=community, community=community,
                changes={"name": community.name, "slug": slug, "kind": kind},
            )
            publish_event(name="communities.created", community=community, payload={"slug": slug})
    except IntegrityError as exc:
        raise InvalidInput(_("The community was not created."), field_errors={"slug": [_("This address is taken.")]}) from exc
    permissions.forget_roles(actor)
    return community


def update_community(*, actor, community: Community, **fields) -> Community:
    permissions.require(actor, "edit", community)
    allowed = {"name", "description", "time_zone", "currency", "open_join", "kind"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(_("Unknown fields."), field_errors={f: [_("Cannot be changed.")] for f in unknown})
    errors = _validate_settings(
        name=fields.get("name"), slug=None, kind=fields.get("kind"), time_zone=fields.get("time_zone"),
        currency=fields.get("currency"),
    )
    if errors:
        raise InvalidInput(_("The community was not changed."), field_errors=errors)
    with transaction.atomic():
        locked = Community.objects.select_for_update().get(pk=community.pk)
        changes = {k: [getattr(locked, k), v] for k, v in fields.items() if getattr(locked, k) != v}
        for key, (_old, new) in changes.items():
            setattr(locked, key, new.strip() if isinstance(new, str) else new)
        if changes:
            locked.save(update_fields=list(changes))
            record_audit(actor=actor, action="community.updated", obj=locked, community=locked, changes=changes)
            publish_event(name="communities.updated", community=locked, payload={"fields": sorted(changes)})
    return locked


def create_invitation(
    *, actor, community: Community, role: str = Role.MEMBER, days_valid: int = 7, max_uses: int | None = None
) -> Invitation:
    permissions.require(actor, "invite", community)
    errors: dict[str, list[str]] = {}
    if role not in Role.values:
        errors["role"] = [_("Choose one of: %(choices)s.") % {"choices": ", ".join(Role.values)}]
    if not (1 <= int(days_valid) <= MAX_INVITATION_DAYS):
        errors["days_valid"] = [_("Between 1 and %(max)d days.") % {"max": MAX_INVITATION_DAYS}]
    if max_uses is not None and not (1 <= int(max_uses) <= 10_000):
        errors["max_uses"] = [_("Between 1 and 10000, or empty for no limit.")]
    if errors:
        raise InvalidInput(_("The invitation was not created."), field_errors=errors)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            community=community, token=secrets.token_urlsafe(24), role=role, created_by=actor,
            expires_at=timezone.now() + timedelta(days=int(days_valid)), max_uses=max_uses,
        )
        record_audit(
            actor=actor, action="invitation.created", obj=invitation, community=community,
            changes={"role": role, "expires_at": invitation.expires_at.isoformat(), "max_uses": max_uses},
        )
        publish_event(name="communities.invitation_created", community=community, payload={"invitation_id": invitation.pk})
    return invitation


def revoke_invitation(*, actor, invitation: Invitation) -> Invitation:
    permissions.require(actor, "invite", invitation.community)
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
            record_audit(actor=actor, action="invitation.revoked", obj=locked, community=locked.community)
    return locked


def invitation_problem(invitation: Invitation, now: datetime | None = None) -> str | None:
    """Why this invitation cannot be used now, or None if it can."""
    now = now or timezone.now()
    if invitation.revoked_at is not None:
        return _("This invitation was revoked.")
    if invitation.expires_at <= now:
        return _("This invitation has expired.")
    if invitation.max_uses is not None and invitation.uses >= invitation.max_uses:
        return _("This invitation has been used up.")
    return None


def join_by_invitation(*, actor, token: str) -> Membership:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update(of=("self",)).select_related("community").filter(token=token).first()
        if invitation is None:
            raise NotFound(_("No such invitation."))
        problem = invitation_problem(invitation)
        if problem:
            raise Conflict(problem, code="invitation_unusable")
        membership = _add_member(actor=actor, community=invitation.community, role=invitation.role, via="invitation")
        invitation.uses += 1
        invitation.save(update_fields=["uses"])
    return membership


def join_open_community(*, actor, community: Community) -> Membership:
    if not community.open_join:
        raise NotFound(_("No such community."))
    with transaction.atomic():
        return _add_member(actor=actor, community=community, role=Role.MEMBER, via="open")


def _add_member(*, actor, community: Community, role: str, via: str) -> Membership:
    if Membership.objects.filter(community=community, user=actor).exists():
        raise Conflict(_("You are already a member of %(name)s.") % {"name": community.name}, code="already_member")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(community=community, user=actor, role=role)
    except IntegrityError as exc:
        raise Conflict(_("You are already a member of %(name)s.") % {"name": community.name}, code="already_member") from exc
    record_audit(actor=actor, action="membership.joined", obj=membership, community=community, changes={"role": role, "via": via})
    publish_event(
        name="communities.member_joined", community=community, payload={"user_id": actor.pk, "role": role}
    )
    permissions.forget_roles(actor)
    return membership


def _lock_memberships(community: Community) -> list[Membership]:
    """Lock the community row, then its memberships, always in that order (no deadlocks)."""
    Community.objects.select_for_update().filter(pk=community.pk).first()
    return list(Membership.objects.select_for_update().filter(community=community).order_by("pk"))


def _ensure_an_organiser_remains(memberships: list[Membership], leaving_pk: int | None, demoted_pk: int | None) -> None:
    organisers = [m for m in memberships if m.role == Role.ORGANISER and m.pk not in {leaving_pk, demoted_pk}]
    if not organisers:
        raise Conflict(_("A community needs at least one organiser; appoint another first."), code="last_organiser")


def change_role(*, actor, membership: Membership, role: str) -> Membership:
    community = membership.community
    permissions.require(actor, "change_role", community)
    if role not in Role.values:
        raise InvalidInput(_("Unknown role."), field_errors={"role": [_("Choose one of: %(choices)s.") % {"choices": ", ".join(Role.values)}]})
    with transaction.atomic():
        memberships = _lock_memberships(community)
        locked = next((m for m in memberships if m.pk == membership.pk), None)
        if locked is None:
            raise NotFound(_("No such member."))
        if locked.role == role:
            return locked
        if locked.role == Role.ORGANISER:
            _ensure_an_organiser_remains(memberships, None, locked.pk)
        old = locked.role
        locked.role = role
        locked.save(update_fields=["role"])
        record_audit(actor=actor, action="membership.role_changed", obj=locked, community=community, changes={"role": [old, role]})
        publish_event(
            name="communities.role_changed", community=community,
            payload={"user_id": locked.user_id, "role": role, "previous": old},
        )
    permissions.forget_roles(actor)
    return locked


def leave_community(*, actor, community: Community) -> None:
    permissions.require(actor, "leave", community)
    with transaction.atomic():
        memberships = _lock_memberships(community)
        mine = next((m for m in memberships if m.user_id == actor.pk), None)
        if mine is None:
            raise NotFound(_("You are not a member."))
        if mine.role == Role.ORGANISER:
            _ensure_an_organiser_remains(memberships, mine.pk, None)
        record_audit(actor=actor, action="membership.left", obj=mine, community=community, changes={"role": mine.role})
        publish_event(name="communities.member_left", community=community, payload={"user_id": actor.pk})
        mine.delete()
    permissions.forget_roles(actor)


def remove_member(*, actor, membership: Membership) -> None:
    community = membership.community
    permissions.require(actor, "remove_member", community)
    with transaction.atomic():
        memberships = _lock_memberships(community)
        locked = next((m for m in memberships if m.pk == membership.pk), None)
        if locked is None:
            raise NotFound(_("No such member."))
        if locked.role == Role.ORGANISER:
            _ensure_an_organiser_remains(memberships, locked.pk, None)
        record_audit(actor=actor, action="membership.removed", obj=locked, community=community, changes={"user_id": locked.user_id})
        publish_event(name="communities.member_left", community=community, payload={"user_id": locked.user_id})
        locked.delete()
