"""The `pumasi communities` command asks the same permission module as pages and API."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from pumasi.communities.models import Membership


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    with translation.override("en"):
        call_command("communities", *args, stdout=out)
    return out.getvalue()


def test_organiser_invites_and_sets_roles(community, member_of):
    person = member_of(community)
    assert "/join/" in run("--as", community.organiser.email, "invite", community.slug, "--role", "observer")
    run("--as", community.organiser.email, "set-role", community.slug, person.email, "committee")
    assert Membership.objects.get(user=person).role == "committee"
    assert "membership.role_changed" in run("--as", community.organiser.email, "audit", community.slug)


def test_member_is_refused_and_outsider_sees_nothing(community, member_of, make_user):
    member = member_of(community)
    with pytest.raises(CommandError, match="role"):
        run("--as", member.email, "invite", community.slug)
    with pytest.raises(CommandError, match="No such community"):
        run("--as", make_user().email, "members", community.slug)


def test_bad_input_is_reported(user):
    with pytest.raises(CommandError, match="slug"):
        run("--as", user.email, "create", "Bad Slug", "Name")
    with pytest.raises(CommandError, match="No person"):
        run("--as", "nobody@example.com", "list")
