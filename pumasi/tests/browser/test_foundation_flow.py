"""The foundation scenario in a real browser, once in Korean and once in English: sign up, create a
community, invite, a second person joins by the link, the organiser makes them committee, and the
audit log shows both; plus the refusals and the profile."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from pumasi.communities import services
from pumasi.communities.models import Community, Invitation, Membership
from pumasi.platform.models import AuditEntry
from pumasi.tests.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser
PASSWORD = "a-long-Passphrase-4-pumasi"

# What the person sees, per language. Korean strings come from our catalogues and allauth's.
TEXT = {
    "ko": {
        "landing": "품앗이 — 가진 것을 나누고, 함께 만들어요",
        "sign_up": "회원가입",
        "sign_up_button": "회원가입",
        "your_communities": "내 공동체",
        "create_community": "공동체 만들기",
        "create": "만들기",
        "created": "공동체를 만들었습니다.",
        "your_role_organiser": "내 역할: 운영자",
        "invitations": "초대",
        "create_invitation": "초대 링크 만들기",
        "invitation_created": "초대 링크를 만들었습니다.",
        "invitation_to": "{name} 초대",
        "invited_as_member": "회원(으)로 초대받았습니다.",
        "accept": "수락하고 가입하기",
        "welcome": "{name}에 오신 것을 환영합니다.",
        "members": "회원",
        "save": "저장",
        "now_committee": "{name} 님의 역할이 이제 위원입니다.",
        "audit_log": "활동 기록",
        "joined": "가입",
        "role_changed": "역할 변경",
        "member_to_committee": "회원 → 위원",
        "duplicate_email": "해당 이메일은 이미 사용되고 있습니다.",
        "mismatch": "동일한 비밀번호를 입력해야 합니다.",
        "expired": "만료된 초대입니다.",
        "profile": "프로필",
        "profile_saved": "프로필을 저장했습니다.",
    },
    "en": {
        "landing": "pumasi — share what you have, make things together",
        "sign_up": "Sign up",
        "sign_up_button": "Sign Up",
        "your_communities": "Your communities",
        "create_community": "Create a community",
        "create": "Create",
        "created": "The community was created.",
        "your_role_organiser": "Your role: Organiser",
        "invitations": "Invitations",
        "create_invitation": "Create invitation link",
        "invitation_created": "The invitation link was created.",
        "invitation_to": "Invitation to {name}",
        "invited_as_member": "You are invited as Member.",
        "accept": "Accept and join",
        "welcome": "Welcome to {name}.",
        "members": "Members",
        "save": "Save",
        "now_committee": "{name} is now Committee.",
        "audit_log": "Audit log",
        "joined": "Joined",
        "role_changed": "Role changed",
        "member_to_committee": "Member → Committee",
        "duplicate_email": "A user is already registered with this email address.",
        "mismatch": "You must type the same password each time.",
        "expired": "This invitation has expired.",
        "profile": "Profile",
        "profile_saved": "Your profile was saved.",
    },
}


def sign_up(page, t, *, email, name, password=PASSWORD, password2=None):
    expect(page.get_by_role("heading", level=1)).to_have_text(t["sign_up_button"])
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password1]").fill(password)
    page.locator("input[name=password2]").fill(password2 or password)
    page.locator("input[name=display_name]").fill(name)
    page.locator("main").get_by_role("button", name=t["sign_up_button"]).click()


@pytest.mark.parametrize("language", ["ko", "en"])
def test_sign_up_create_invite_join_promote_audit(new_context, language):
    t = TEXT[language]
    organiser = new_context(language).new_page()

    # 1. The organiser signs up from the landing page.
    organiser.goto("/")
    expect(organiser.locator("html")).to_have_attribute("lang", language)
    expect(organiser.get_by_role("heading", level=1)).to_have_text(t["landing"])
    organiser.locator("main").get_by_role("link", name=t["sign_up"]).click()
    sign_up(organiser, t, email=f"organiser-{language}@example.com", name=f"Organiser {language}")
    expect(organiser.get_by_role("heading", name=t["your_communities"])).to_be_visible()
    person = get_user_model().objects.get(email=f"organiser-{language}@example.com")
    assert person.language == language, "the sign-up form preselects the page's language"

    # 2. ... creates a community.
    organiser.locator("main").get_by_role("link", name=t["create_community"]).click()
    expect(organiser.get_by_role("heading", level=1)).to_have_text(t["create_community"])
    name = {"ko": "독산4동 주민자치회", "en": "Riverside Makers"}[language]
    slug = f"flow-{language}"
    organiser.locator("input[name=name]").fill(name)
    organiser.locator("input[name=slug]").fill(slug)
    organiser.locator("select[name=kind]").select_option("residents")
    organiser.locator("main").get_by_role("button", name=t["create"], exact=True).click()
    expect(organiser.get_by_role("heading", level=1)).to_have_text(name)
    expect(organiser.get_by_role("status")).to_contain_text(t["created"])
    expect(organiser.locator("main")).to_contain_text(t["your_role_organiser"])

    # 3. ... and an invitation link.
    organiser.locator("main").get_by_role("link", name=t["invitations"]).click()
    organiser.get_by_role("button", name=t["create_invitation"]).click()
    expect(organiser.locator(".messages")).to_contain_text(t["invitation_created"])
    link = organiser.locator("#new-invitation-link").input_value()
    assert re.fullmatch(r"http://[^/]+/join/[\w-]+/", link), link

    # 4. A second person, in their own browser, opens the link, signs up and joins.
    guest = new_context(language).new_page()
    guest.goto(link)
    expect(guest.get_by_role("heading", level=1)).to_have_text(t["invitation_to"].format(name=name))
    expect(guest.locator("main")).to_contain_text(t["invited_as_member"])
    guest.locator("main").get_by_role("link", name=t["sign_up"]).click()
    sign_up(guest, t, email=f"guest-{language}@example.com", name=f"Guest {language}")
    expect(guest).to_have_url(link)  # allauth brought them back to the invitation
    guest.get_by_role("button", name=t["accept"]).click()
    expect(guest.get_by_role("heading", level=1)).to_have_text(name)
    expect(guest.get_by_role("status")).to_contain_text(t["welcome"].format(name=name))

    # 5. The organiser makes them committee on the members page.
    organiser.goto(f"/c/{slug}/")
    organiser.locator("main").get_by_role("link", name=t["members"], exact=True).click()
    row = organiser.locator("tr", has_text=f"Guest {language}")
    row.locator("select").select_option("committee")
    row.get_by_role("button", name=t["save"]).click()
    expect(organiser.get_by_role("status")).to_contain_text(t["now_committee"].format(name=f"Guest {language}"))
    expect(organiser.locator("tr", has_text=f"Guest {language}").locator("[data-role]")).to_have_attribute(
        "data-role", "committee")
    community = Community.objects.get(slug=slug)
    assert Membership.objects.get(community=community, user__email=f"guest-{language}@example.com").role == "committee"

    # 6. The audit log shows the join and the role change, in the reader's language.
    organiser.goto(f"/c/{slug}/")
    organiser.locator("main").get_by_role("link", name=t["audit_log"]).click()
    expect(organiser.get_by_role("heading", level=1)).to_have_text(t["audit_log"])
    joined = organiser.locator("tr[data-action='membership.joined']")
    changed = organiser.locator("tr[data-action='membership.role_changed']")
    expect(joined).to_have_count(1)
    expect(changed).to_have_count(1)
    expect(joined).to_contain_text(f"Guest {language}")
    expect(joined).to_contain_text(t["joined"])
    expect(changed).to_contain_text(f"Organiser {language}")
    expect(changed).to_contain_text(t["role_changed"])
    expect(changed).to_contain_text(t["member_to_committee"])
    assert set(AuditEntry.objects.filter(community=community).values_list("action", flat=True)) >= {
        "community.created", "invitation.created", "membership.joined", "membership.role_changed"}


@pytest.mark.parametrize("language", ["ko", "en"])
def test_sign_up_refuses_duplicate_email_and_mismatched_passwords(new_context, language):
    t = TEXT[language]
    UserFactory(email="taken@example.com")
    users_before = get_user_model().objects.count()
    page = new_context(language).new_page()

    page.goto("/accounts/signup/")
    sign_up(page, t, email="TAKEN@example.com", name="Someone")
    expect(page.locator("main .errorlist")).to_contain_text(t["duplicate_email"])
    expect(page.locator("input[name=email]")).to_have_attribute("aria-invalid", "true")

    page.goto("/accounts/signup/")
    sign_up(page, t, email="fresh@example.com", name="Someone", password2=PASSWORD + "-typo")
    expect(page.locator("main .errorlist")).to_contain_text(t["mismatch"])
    expect(page.locator("input[name=email]")).to_have_value("fresh@example.com")  # kept for the retry

    assert get_user_model().objects.count() == users_before, "a refused sign-up writes nothing"


@pytest.mark.parametrize("language", ["ko", "en"])
def test_expired_invitation_page_explains_and_offers_no_join(new_context, language):
    t = TEXT[language]
    organiser, visitor = UserFactory(language=language), UserFactory(language=language)
    community = CommunityFactory(name="Closed Circle")
    MembershipFactory(community=community, user=organiser, role="organiser")
    invitation = services.create_invitation(actor=organiser, community=community)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    page = new_context(language, user=visitor).new_page()
    page.goto(f"/join/{invitation.token}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(t["invitation_to"].format(name="Closed Circle"))
    expect(page.get_by_role("alert")).to_have_text(t["expired"])
    expect(page.get_by_role("button", name=t["accept"])).to_have_count(0)
    assert not Membership.objects.filter(community=community, user=visitor).exists()


def _png_with_metadata() -> bytes:
    from PIL import PngImagePlugin

    image = Image.new("RGBA", (800, 600), (200, 30, 60, 255))
    for x in range(0, 800, 40):
        for y in range(600):
            image.putpixel((x, y), (20, 120, 200, 128))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret GPS 37.46,126.89")
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def test_profile_avatar_upload_and_language_switch(new_context, tmp_path):
    person = UserFactory(display_name="Jiho", language="ko")
    page = new_context("ko", user=person).new_page()
    page.goto("/accounts/profile/")
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["ko"]["profile"])
    expect(page.locator("html")).to_have_attribute("lang", "ko")

    avatar_file = tmp_path / "me.png"
    avatar_file.write_bytes(_png_with_metadata())
    page.get_by_label("표시 이름").fill("박지호")
    page.get_by_label("프로필 사진").set_input_files(str(avatar_file))
    page.get_by_label("언어").select_option("en")
    page.get_by_role("button", name="저장").click()

    # Saved in Korean's place, the page now speaks English.
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["en"]["profile"])
    expect(page.get_by_role("status")).to_contain_text(TEXT["en"]["profile_saved"])
    avatar = page.get_by_role("img", name="Your avatar")
    expect(avatar).to_be_visible()
    person.refresh_from_db()
    assert (person.display_name, person.language) == ("박지호", "en")

    served = page.request.get(avatar.get_attribute("src"))
    assert served.status == 200
    with Image.open(io.BytesIO(served.body())) as stored:
        assert stored.format == "PNG"
        assert max(stored.size) <= 512, "re-encoded to at most 512 px"
        assert "Comment" not in stored.info, "metadata stripped"

    # The header's language switch goes back to Korean and remembers it on the profile.
    page.get_by_role("button", name="한국어").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["ko"]["profile"])
    person.refresh_from_db()
    assert person.language == "ko"


def test_profile_refuses_a_file_that_is_not_an_image(new_context, tmp_path):
    person = UserFactory(display_name="Mina", language="en")
    page = new_context("en", user=person).new_page()
    page.goto("/accounts/profile/")
    fake = tmp_path / "cat.png"
    fake.write_bytes(b"this is not a picture at all")
    page.get_by_label("Display name").fill("Changed name")
    page.get_by_label("Avatar").set_input_files(str(fake))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main .errorlist")).to_contain_text("Upload a JPEG, PNG, WebP or GIF image.")
    person.refresh_from_db()
    assert person.display_name == "Mina" and not person.avatar, "name and avatar change together or not at all"
