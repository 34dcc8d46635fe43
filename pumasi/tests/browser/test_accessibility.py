"""Every foundation page, on a 360 px phone: zero serious or critical axe-core violations and no
sideways scrolling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pumasi.communities import services
from pumasi.communities.models import Invitation
from pumasi.platform.calendars import rotate_calendar_feed
from pumasi.platform.services import create_api_token
from pumasi.tests.browser.conftest import axe_violations
from pumasi.tests.factories import UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def world(transactional_db):
    """An organiser with a community that has a member, a committee member, invitations, a token
    and therefore a filled audit log."""
    organiser = UserFactory(display_name="김민지 Organiser with a rather long display name", language="ko")
    community = services.create_community(
        actor=organiser, name="독산4동 주민자치회 (Doksan 4-dong residents' committee)", slug="doksan4",
        kind="residents", description="우리 동네의 공구와 공간을 함께 나눕니다.",
    )
    member = UserFactory(display_name="Park Jiho", language="ko")
    invitation = services.create_invitation(actor=organiser, community=community, max_uses=20)
    membership = services.join_by_invitation(actor=member, token=invitation.token)
    services.change_role(actor=organiser, membership=membership, role="committee")
    expired = services.create_invitation(actor=organiser, community=community)
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    services.revoke_invitation(actor=organiser, invitation=services.create_invitation(actor=organiser, community=community))
    create_api_token(user=organiser, name="phone app", scopes=["read", "communities:write"])
    rotate_calendar_feed(actor=organiser)
    outsider = UserFactory(display_name="Lee Outsider", language="ko")
    return {"organiser": organiser, "community": community, "invitation": invitation, "expired": expired,
            "outsider": outsider}


# (name, who is signed in, path; {slug}/{token}/{expired} are filled in from `world`)
PAGES = [
    ("landing, signed out", None, "/"),
    ("landing, signed in", "organiser", "/"),
    ("sign up", None, "/accounts/signup/"),
    ("sign in", None, "/accounts/login/"),
    ("password reset", None, "/accounts/password/reset/"),
    ("profile", "organiser", "/accounts/profile/"),
    ("create community", "organiser", "/new/"),
    ("community home", "organiser", "/c/{slug}/"),
    ("members", "organiser", "/c/{slug}/members/"),
    ("invitations", "organiser", "/c/{slug}/invitations/"),
    ("audit log", "organiser", "/c/{slug}/audit/"),
    ("join page, signed out", None, "/join/{token}/"),
    ("join page, signed in", "outsider", "/join/{token}/"),
    ("join page, expired", "outsider", "/join/{expired}/"),
    ("tokens", "organiser", "/tokens/"),
    ("calendar feed", "organiser", "/me/calendar/"),
    ("not found", None, "/no/such/page/"),
]


def _open(new_context, world, who, path, language="ko"):
    user = world[who] if who else None
    page = new_context(language, user=user).new_page()
    url = path.format(slug=world["community"].slug, token=world["invitation"].token, expired=world["expired"].token)
    response = page.goto(url)
    return page, response


@pytest.mark.parametrize(("name", "who", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_page_is_accessible_and_fits_a_phone(new_context, world, name, who, path):
    page, response = _open(new_context, world, who, path)
    assert response.status == (404 if name == "not found" else 200)
    assert page.locator("h1").count() == 1, "one main heading per page"
    assert page.get_attribute("html", "lang") == "ko"
    assert axe_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_forms_with_errors_are_accessible(new_context, world):
    """Error messages beside fields keep labels, contrast and layout intact."""
    page = new_context("en").new_page()
    page.goto("/accounts/signup/")
    page.get_by_label("Email").first.fill("not-an-address")
    page.locator("input[name=password1]").fill("short")
    page.locator("input[name=password2]").fill("different")
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator(".errorlist, [role=alert]").count() >= 1
    assert axe_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    organiser_page = new_context("en", user=world["organiser"]).new_page()
    organiser_page.goto("/new/")
    organiser_page.locator("main form button[type=submit]").click()
    organiser_page.wait_for_load_state()
    assert organiser_page.locator(".errorlist").count() >= 1
    assert axe_violations(organiser_page) == []
    assert organiser_page.evaluate("document.documentElement.scrollWidth") <= 360


def test_english_pages_are_accessible(new_context, world):
    for who, path in [(None, "/"), ("organiser", "/c/{slug}/members/"), ("organiser", "/c/{slug}/audit/")]:
        page, _response = _open(new_context, world, who, path, language="en")
        if page.get_attribute("html", "lang") == "ko":
            # The organiser's profile says Korean, whatever the browser asks for; switch it in the header
            # (the profile remembers it for the next page).
            page.get_by_role("button", name="English").click()
            page.wait_for_load_state()
        assert page.get_attribute("html", "lang") == "en"
        assert axe_violations(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
