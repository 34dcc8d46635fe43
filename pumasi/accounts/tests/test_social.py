"""Sign in with an existing account: providers switched on by configuration, account linking,
and TOTP two-factor required of organisers when their community says so."""

from __future__ import annotations

import json

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.socialaccount.models import SocialAccount
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from pumasi.accounts.social import providers_from_env
from pumasi.core.errors import PermissionDenied
from pumasi.platform.models import AuditEntry, CommunityPolicy
from pumasi.platform.services import set_community_policy


def test_no_configuration_means_no_providers_and_no_buttons(db, client, settings):
    assert providers_from_env({}) == {}
    settings.SOCIALACCOUNT_PROVIDERS = {}
    page = client.get("/accounts/login/").content.decode()
    assert "/accounts/kakao/login/" not in page and "/accounts/github/login/" not in page


def test_configured_providers_show_buttons(db, client, settings):
    env = {
        "PUMASI_KAKAO_CLIENT_ID": "kakao-id", "PUMASI_KAKAO_SECRET": "kakao-secret",
        "PUMASI_GITHUB_CLIENT_ID": "gh-id", "PUMASI_GITHUB_SECRET": "gh-secret",
        "PUMASI_OIDC_PROVIDERS": json.dumps([{"id": "city", "name": "City ID", "server_url": "https://id.city.example",
                                              "client_id": "c", "secret": "s"}]),
    }
    providers = providers_from_env(env)
    assert set(providers) == {"kakao", "github", "openid_connect"}
    assert providers["openid_connect"]["APPS"][0]["settings"]["server_url"] == "https://id.city.example"
    settings.SOCIALACCOUNT_PROVIDERS = providers
    page = client.get("/accounts/login/").content.decode()
    assert "/accounts/kakao/login/" in page and "/accounts/github/login/" in page
    assert "/accounts/oidc/city/login/" in page and "City ID" in page
    assert "/accounts/naver/login/" not in page and "/accounts/google/login/" not in page


@pytest.mark.parametrize("env", [
    {"PUMASI_GOOGLE_CLIENT_ID": "only-id"},
    {"PUMASI_OIDC_PROVIDERS": "{not json"},
    {"PUMASI_OIDC_PROVIDERS": json.dumps({"id": "x"})},
    {"PUMASI_OIDC_PROVIDERS": json.dumps([{"id": "x", "name": "X"}])},
])
def test_half_configured_providers_stop_the_start_with_a_clear_message(env):
    with pytest.raises(ImproperlyConfigured):
        providers_from_env(env)


def test_linked_logins_are_listed_on_the_connections_page(user, settings):
    settings.SOCIALACCOUNT_PROVIDERS = providers_from_env({"PUMASI_KAKAO_CLIENT_ID": "k", "PUMASI_KAKAO_SECRET": "s",
                                                           "PUMASI_GITHUB_CLIENT_ID": "g", "PUMASI_GITHUB_SECRET": "s"})
    SocialAccount.objects.create(user=user, provider="kakao", uid="1001", extra_data={"id": 1001})
    SocialAccount.objects.create(user=user, provider="github", uid="2002", extra_data={"login": "maker"})
    browser = Client()
    browser.force_login(user)
    page = browser.get("/accounts/3rdparty/")
    assert page.status_code == 200
    assert user.socialaccount_set.count() == 2


def test_organisers_must_set_up_totp_when_the_community_requires_it(community, member_of):
    member = member_of(community)
    with pytest.raises(PermissionDenied):
        set_community_policy(actor=member, community=community, organisers_need_mfa=True)
    organiser = Client()
    organiser.force_login(community.organiser)
    assert organiser.get(f"/c/{community.slug}/").status_code == 200

    set_community_policy(actor=community.organiser, community=community, organisers_need_mfa=True)
    assert CommunityPolicy.objects.get(community=community).organisers_need_mfa
    assert AuditEntry.objects.filter(action="community.policy_changed").count() == 1
    gated = organiser.get(f"/c/{community.slug}/")
    assert gated.status_code == 302 and gated["Location"] == "/accounts/2fa/totp/activate/"
    assert organiser.get("/accounts/2fa/totp/activate/").status_code in (200, 302)  # the setup page itself is open

    plain_member = Client()
    plain_member.force_login(member)
    assert plain_member.get(f"/c/{community.slug}/").status_code == 200  # members are not gated

    TOTP.activate(community.organiser, generate_totp_secret())
    assert Authenticator.objects.filter(user=community.organiser).exists()
    assert organiser.get(f"/c/{community.slug}/").status_code == 200
