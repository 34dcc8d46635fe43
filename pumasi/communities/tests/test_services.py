"""Community services: creation, invitations, joining, roles, leaving — and the refusals."""

from datetime import timedelta

import pytest
from django.utils import timezone

from pumasi.communities import services
from pumasi.communities.models import Community, Membership
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.platform.models import AuditEntry, Event


def test_create_community_makes_creator_organiser_and_audits(user):
    community = services.create_community(actor=user, name="독산4동", slug="doksan4", kind="residents")
    assert Membership.objects.get(community=community, user=user).role == "organiser"
    entry = AuditEntry.objects.get(community=community, action="community.created")
    assert entry.actor == user and entry.changes["slug"] == "doksan4"
    assert Event.objects.filter(name="communities.created", community=community).exists()


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"slug": "A b"}, "slug"),
        ({"slug": "-bad-"}, "slug"),
        ({"kind": "club"}, "kind"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"currency": "XXX"}, "currency"),
        ({"name": ""}, "name"),
    ],
)
def test_create_community_refuses_bad_fields(user, fields, field):
    base = {"name": "Alley", "slug": "alley", "kind": "residents"}
    with pytest.raises(InvalidInput) as info:
        services.create_community(actor=user, **{**base, **fields})
    assert field in info.value.field_errors
    assert not Community.objects.exists()
    assert not AuditEntry.objects.exists()


def test_duplicate_slug_is_a_field_error(user, community):
    with pytest.raises(InvalidInput) as info:
        services.create_community(actor=user, name="Other", slug=community.slug, kind="cooperative")
    assert "slug" in info.value.field_errors


def test_invitation_join_once_then_already_member(community, make_user):
    invitation = services.create_invitation(actor=community.organiser, community=community, role="member")
    newcomer = make_user()
    membership = services.join_by_invitation(actor=newcomer, token=invitation.token)
    assert membership.role == "member"
    with pytest.raises(Conflict) as info:
        services.join_by_invitation(actor=newcomer, token=invitation.token)
    assert info.value.code == "already_member"
    invitation.refresh_from_db()
    assert invitation.uses == 1


def test_expired_and_revoked_invitations_refuse(community, make_user):
    expired = services.create_invitation(actor=community.organiser, community=community)
    expired.expires_at = timezone.now() - timedelta(seconds=1)
    expired.save()
    revoked = services.revoke_invitation(
        actor=community.organiser, invitation=services.create_invitation(actor=community.organiser, community=community)
    )
    person = make_user()
    for token in (expired.token, revoked.token):
        with pytest.raises(Conflict):
            services.join_by_invitation(actor=person, token=token)
    assert not Membership.objects.filter(user=person).exists()
    with pytest.raises(NotFound):
        services.join_by_invitation(actor=person, token="no-such-token")


def test_used_up_invitation_refuses(community, make_user):
    invitation = services.create_invitation(actor=community.organiser, community=community, max_uses=1)
    services.join_by_invitation(actor=make_user(), token=invitation.token)
    with pytest.raises(Conflict):
        services.join_by_invitation(actor=make_user(), token=invitation.token)


def test_members_cannot_invite_or_change_roles(community, member_of):
    member = member_of(community, "member")
    with pytest.raises(PermissionDenied):
        services.create_invitation(actor=member, community=community)
    other = member_of(community, "member")
    membership = Membership.objects.get(user=other)
    with pytest.raises(PermissionDenied):
        services.change_role(actor=member, membership=membership, role="committee")


def test_last_organiser_cannot_leave_or_be_demoted(community, member_of):
    organiser_membership = Membership.objects.get(user=community.organiser)
    with pytest.raises(Conflict) as info:
        services.leave_community(actor=community.organiser, community=community)
    assert info.value.code == "last_organiser"
    with pytest.raises(Conflict):
        services.change_role(actor=community.organiser, membership=organiser_membership, role="member")
    second = member_of(community, "organiser")
    services.change_role(actor=second, membership=organiser_membership, role="member")
    assert Membership.objects.get(user=community.organiser).role == "member"


def test_change_role_audits_old_and_new(community, member_of):
    person = member_of(community, "member")
    membership = Membership.objects.get(user=person, community=community)
    services.change_role(actor=community.organiser, membership=membership, role="committee")
    entry = AuditEntry.objects.get(action="membership.role_changed")
    assert entry.changes == {"role": ["member", "committee"]}
    assert entry.actor == community.organiser


def test_open_join_only_where_allowed(community, make_user):
    person = make_user()
    with pytest.raises(NotFound):
        services.join_open_community(actor=person, community=community)
    community.open_join = True
    community.save()
    assert services.join_open_community(actor=person, community=community).role == "member"
