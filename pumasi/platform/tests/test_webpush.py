"""Web Push end to end, with no stand-ins: a real HTTP server on loopback plays the push service,
the test makes its own P-256 key pair and auth secret as a browser would, and the pushed bodies
are decrypted with an independent implementation (http_ece) and the VAPID token checked with
`cryptography` directly."""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.test import Client

from pumasi.cocreation import services as cocreation
from pumasi.core.events import publish_event
from pumasi.platform import notifications, webpush
from pumasi.platform.models import (
    AuditEntry,
    Notification,
    NotificationPreference,
    PushDelivery,
    PushSubscription,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService:
    """A push service on loopback: records every request and answers with the status set for its path."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status: dict[str, int] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                         "body": body})
                self.send_response(service.status.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Browser:
    """What a browser keeps for one push subscription: a P-256 key pair and a 16-byte auth secret."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def to_json(self) -> dict:
        public = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}

    def read(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


def verify_vapid(header: str, audience: str) -> tuple[dict, str]:
    """Check `vapid t=<JWT>, k=<key>` (RFC 8292) by hand: ES256 over header.claims with key k."""
    assert header.startswith("vapid ")
    params = dict(part.strip().split("=", 1) for part in header[len("vapid "):].split(","))
    token, key = params["t"], params["k"]
    head, claims, signature = token.split(".")
    assert json.loads(unb64url(head)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64url(signature)
    assert len(raw) == 64  # JWS ES256: r || s, not DER
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    data = json.loads(unb64url(claims))
    assert data["aud"] == audience
    return data, key


@pytest.fixture
def push_service(settings):
    settings.PUMASI_PUSH_LOOPBACK = True  # plain http to loopback, as in development
    service = PushService()
    yield service
    service.close()


def _idea(community, author):
    board = cocreation.create_board(actor=community.organiser, community=community, title="골목 정원",
                                    question="무엇을 심을까요?")
    return cocreation.create_idea(actor=author, board=board, title="해바라기 심기", body="담장 옆에 해바라기를 심어요.")


def test_a_comment_on_my_idea_reaches_my_browser_encrypted_and_signed(
        community, member_of, api_client_for, push_service, django_capture_on_commit_callbacks):
    author, commenter = member_of(community), member_of(community)
    idea = _idea(community, author)
    browser = Browser(push_service.url("/push/author-phone"))
    api = api_client_for(author)
    created = api.post("/api/v1/push/subscriptions", browser.to_json(), content_type="application/json",
                       HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36")
    assert created.status_code == 201, created.content
    assert created.json()["device"] == "Chrome · Android" and created.json()["push_service"].startswith("127.0.0.1:")
    server_key = Client().get("/api/v1/push/key").json()["public_key"]  # public: no sign-in needed

    with django_capture_on_commit_callbacks(execute=True):
        comment = cocreation.comment_on_idea(actor=commenter, idea=idea, body="좋아요, 씨앗을 가져갈게요.")

    notice = Notification.objects.get(recipient=author, kind="cocreation.idea_commented")
    assert len(push_service.requests) == 1
    request = push_service.requests[0]
    assert request["path"] == "/push/author-phone"
    headers = request["headers"]
    assert headers["ttl"] == str(webpush.TTL_SECONDS) and int(headers["ttl"]) > 0
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["content-type"] == "application/octet-stream"
    claims, key = verify_vapid(headers["authorization"], audience=push_service.url(""))
    assert key == server_key
    assert claims["sub"].startswith(("mailto:", "https://")) and claims["exp"] > 0
    message = browser.read(request["body"])
    assert message == {"id": notice.pk, "title": "해바라기 심기", "body": "",
                       "url": f"{cocreation.idea_url(idea)}#comment-{comment.pk}",
                       "unread": notifications.unread_count(author)}
    assert message["unread"] >= 1

    delivery = PushDelivery.objects.get(notification=notice)
    assert delivery.status_code == 201 and delivery.delivered_at is not None
    subscription = PushSubscription.objects.get(user=author)
    assert subscription.last_success_at is not None and subscription.failures == 0

    # The job again (a retry, a second worker): nothing is pushed twice.
    assert webpush.push_notification(notice.pk) == 0
    from pumasi.platform.tasks import send_push_job

    send_push_job(notice.pk)
    assert len(push_service.requests) == 1 and PushDelivery.objects.count() == 1
    assert not push_service.to("/push/commenter")  # the commenter is not told about their own comment


def test_gone_subscriptions_are_disabled_and_failures_counted(user, push_service, django_capture_on_commit_callbacks):
    phone, old_laptop, flaky = (Browser(push_service.url(p)) for p in ("/push/phone", "/push/gone", "/push/flaky"))
    push_service.status.update({"/push/gone": 410, "/push/flaky": 503})
    for browser in (phone, old_laptop, flaky):
        keys = browser.to_json()["keys"]
        webpush.subscribe(user=user, endpoint=browser.endpoint, p256dh=keys["p256dh"], auth=keys["auth"])

    with django_capture_on_commit_callbacks(execute=True):
        first = notifications.notify(recipient=user, kind="company_message", title="발송 완료", body="송장 123",
                                     url="/orders/7/")
    assert phone.read(push_service.to("/push/phone")[0]["body"])["body"] == "송장 123"
    # the 410 ended that subscription at once; the audit log says why
    gone = PushSubscription.objects.get(endpoint=old_laptop.endpoint)
    assert gone.disabled_at is not None and "ended" in gone.disabled_reason
    assert AuditEntry.objects.filter(action="push_subscription.disabled", object_id=str(gone.pk)).exists()
    assert PushSubscription.objects.get(endpoint=flaky.endpoint).failures == 1
    assert PushDelivery.objects.get(notification=first, subscription=gone).status_code == 410

    for n in range(webpush.MAX_FAILURES - 1):
        with django_capture_on_commit_callbacks(execute=True):
            notifications.notify(recipient=user, kind="company_message", title=f"소식 {n}")
    assert len(push_service.to("/push/gone")) == 1  # never tried again
    assert len(push_service.to("/push/flaky")) == webpush.MAX_FAILURES
    flaky_row = PushSubscription.objects.get(endpoint=flaky.endpoint)
    assert flaky_row.disabled_at is not None and flaky_row.failures == webpush.MAX_FAILURES
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify(recipient=user, kind="company_message", title="마지막")
    assert len(push_service.to("/push/flaky")) == webpush.MAX_FAILURES
    assert len(push_service.to("/push/phone")) == webpush.MAX_FAILURES + 1

    # the browser subscribing again with the same endpoint turns it back on, failures forgotten
    keys = flaky.to_json()["keys"]
    again = webpush.subscribe(user=user, endpoint=flaky.endpoint, p256dh=keys["p256dh"], auth=keys["auth"])
    assert again.pk == flaky_row.pk and again.disabled_at is None and again.failures == 0


def test_push_choice_per_kind_and_fan_out_to_followers(community, member_of, push_service,
                                                       django_capture_on_commit_callbacks):
    follower, quiet = member_of(community), member_of(community)
    browsers = {}
    for person in (follower, quiet):
        browsers[person.pk] = Browser(push_service.url(f"/push/{person.pk}"))
        keys = browsers[person.pk].to_json()["keys"]
        webpush.subscribe(user=person, endpoint=browsers[person.pk].endpoint, p256dh=keys["p256dh"], auth=keys["auth"])
        notifications.follow(user=person, target_type="communities.community", target_id=community.pk)
    notifications.set_preference(user=quiet, kind="activity", push=False)
    assert NotificationPreference.objects.get(user=quiet, kind="activity").email == "daily"  # e-mail untouched

    with django_capture_on_commit_callbacks(execute=True):
        event = publish_event(name="governance.proposal_opened", community=community, payload={"id": 1})
    assert Notification.objects.filter(event=event, kind="activity").count() == 2
    assert len(push_service.to(f"/push/{follower.pk}")) == 1 and not push_service.to(f"/push/{quiet.pk}")
    message = browsers[follower.pk].read(push_service.to(f"/push/{follower.pk}")[0]["body"])
    assert community.name in message["title"] and message["url"] == f"/c/{community.slug}/"

    # the quiet one still gets other kinds
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify(recipient=quiet, kind="company_message", title="Hello")
    assert len(push_service.to(f"/push/{quiet.pk}")) == 1


def test_a_long_body_is_shortened_to_fit_one_record(user, push_service, django_capture_on_commit_callbacks):
    browser = Browser(push_service.url("/push/long"))
    keys = browser.to_json()["keys"]
    webpush.subscribe(user=user, endpoint=browser.endpoint, p256dh=keys["p256dh"], auth=keys["auth"])
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify(recipient=user, kind="company_message", title="긴 소식", body="가" * 3000)
    message = browser.read(push_service.to("/push/long")[0]["body"])
    assert message["body"].startswith("가" * 100) and message["body"].endswith("…")
    assert len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()) <= webpush.MAX_PLAINTEXT


def test_encryption_matches_rfc_8291_appendix_a(db):
    """The worked example of RFC 8291: same inputs, byte for byte the same message."""
    as_key = ec.derive_private_key(int.from_bytes(unb64url("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"), "big"),
                                   ec.SECP256R1())
    body = webpush.encrypt(
        unb64url("V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24"),
        p256dh=unb64url("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
        auth=unb64url("BTBZMqHH6r4Tts7J_aSIgg"), salt=unb64url("DGv6ra1nlYgDCS1FRnbzlw"), server_key=as_key)
    assert b64url(body) == (
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6P"
        "Bru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")


def _valid(endpoint="https://push.example.org/wpush/v2/abc") -> dict:
    return Browser(endpoint).to_json()


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda s: s.update(endpoint="http://push.example.org/x"), "endpoint", "https://"),
    (lambda s: s.update(endpoint="https://10.1.2.3/x"), "endpoint", "public internet"),
    (lambda s: s.update(endpoint="https://user:pw@push.example.org/x"), "endpoint", "https://"),
    (lambda s: s.update(endpoint="push.example.org/x"), "endpoint", "https://"),
    (lambda s: s["keys"].update(p256dh=b64url(b"\x04" + b"\x01" * 31)), "keys.p256dh", "65 bytes"),
    (lambda s: s["keys"].update(p256dh=b64url(b"\x04" + b"\x00" * 64)), "keys.p256dh", "P-256"),
    (lambda s: s["keys"].update(auth="not base64!"), "keys.auth", "base64url"),
    (lambda s: s["keys"].update(auth=b64url(os.urandom(15))), "keys.auth", "16 bytes"),
    (lambda s: s.update(expirationTime=1000), "expirationTime", "expired"),
])
def test_bad_subscriptions_are_refused_with_clear_errors_and_nothing_saved(user, api_client_for, settings,
                                                                           change, field, words):
    settings.PUMASI_PUSH_LOOPBACK = False
    body = _valid()
    change(body)
    response = api_client_for(user).post("/api/v1/push/subscriptions", body, content_type="application/json")
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Push notifications were not turned on."
    assert field in problem["errors"] and words in " ".join(problem["errors"][field]), problem
    assert not PushSubscription.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="push_subscription").exists()


def test_loopback_http_only_while_developing_or_testing(user, settings):
    body = _valid("http://127.0.0.1:9/push")
    settings.PUMASI_PUSH_LOOPBACK = False
    with pytest.raises(webpush.InvalidInput) as refused:
        webpush.subscribe(user=user, endpoint=body["endpoint"], **body["keys"])
    assert "endpoint" in refused.value.field_errors
    settings.PUMASI_PUSH_LOOPBACK = True
    assert webpush.subscribe(user=user, endpoint=body["endpoint"], **body["keys"]).pk
    assert webpush.validate_subscription("http://10.0.0.1/push", **body["keys"])  # loopback only, not the LAN


def test_a_name_that_resolves_into_our_network_is_not_pushed_to(user, push_service, settings,
                                                                django_capture_on_commit_callbacks):
    """Checked again at send time: `localhost` passes for a name but resolves to loopback."""
    browser = Browser(push_service.url("/push/sneaky").replace("127.0.0.1", "localhost"))
    keys = browser.to_json()["keys"]
    webpush.subscribe(user=user, endpoint=browser.endpoint, p256dh=keys["p256dh"], auth=keys["auth"])
    settings.PUMASI_PUSH_LOOPBACK = False
    with django_capture_on_commit_callbacks(execute=True):
        notice = notifications.notify(recipient=user, kind="company_message", title="Hi")
    assert not push_service.requests
    subscription = PushSubscription.objects.get(user=user)
    assert subscription.disabled_at is not None and "not public" in subscription.disabled_reason
    assert PushDelivery.objects.get(notification=notice).error == "address not allowed"


def test_subscription_api_lists_and_deletes_only_my_own(user, make_user, api_client_for, push_service):
    other = make_user()
    mine = api_client_for(user).post("/api/v1/push/subscriptions", Browser(push_service.url("/a")).to_json(),
                                     content_type="application/json").json()
    theirs = api_client_for(other).post("/api/v1/push/subscriptions", Browser(push_service.url("/b")).to_json(),
                                        content_type="application/json").json()
    api = api_client_for(user)
    listed = api.get("/api/v1/push/subscriptions").json()
    assert [item["id"] for item in listed["items"]] == [mine["id"]]
    assert "endpoint" not in listed["items"][0]  # the capability URL is not handed back out
    assert api.delete(f"/api/v1/push/subscriptions/{theirs['id']}").status_code == 404
    read_only = api_client_for(user, scopes=["read"])
    assert read_only.post("/api/v1/push/subscriptions", Browser(push_service.url("/c")).to_json(),
                          content_type="application/json").status_code == 403
    assert api.delete(f"/api/v1/push/subscriptions/{mine['id']}").status_code == 204
    assert list(PushSubscription.objects.values_list("user_id", flat=True)) == [other.pk]
    assert AuditEntry.objects.filter(action="push_subscription.deleted", actor=user).count() == 1

    prefs = api.put("/api/v1/notifications/preferences", {"kind": "activity", "push": False},
                    content_type="application/json")
    assert prefs.status_code == 200 and prefs.json() == {"kind": "activity", "email": "daily", "push": False}
    assert api.get("/api/v1/notifications/preferences").json() == [{"kind": "activity", "email": "daily", "push": False}]
    assert api.put("/api/v1/notifications/preferences", {"kind": "activity"},
                   content_type="application/json").status_code == 422


def test_preferences_page_turns_push_on_and_off(user, push_service):
    browser = Client()
    browser.force_login(user)
    notifications.notify(recipient=user, kind="company_message", title="Hello")
    html = browser.get("/notifications/").content.decode()
    assert f'data-key="{webpush.vapid_public_key()}"' in html and "data-push-control" in html
    assert "platform/push.js" in html and 'name="push"' in html

    subscribed = browser.post("/notifications/push/subscribe/", Browser(push_service.url("/page")).to_json(),
                              content_type="application/json", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari/604.1")
    assert subscribed.status_code == 201
    device = PushSubscription.objects.get(user=user)
    assert device.label == "Safari · iPhone"
    bad = browser.post("/notifications/push/subscribe/", {"endpoint": "ftp://x", "keys": {}},
                       content_type="application/json")
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"endpoint", "keys.p256dh", "keys.auth"}
    assert "Safari · iPhone" in browser.get("/notifications/").content.decode()

    # the push tick box: unticked means off, and the e-mail choice is saved alongside
    browser.post("/notifications/preference/", {"kind": "company_message", "email": "never", "has_push": "1"})
    pref = NotificationPreference.objects.get(user=user, kind="company_message")
    assert pref.email == "never" and pref.push is False
    browser.post("/notifications/preference/", {"kind": "company_message", "email": "never", "has_push": "1",
                                                "push": "on"})
    assert NotificationPreference.objects.get(user=user, kind="company_message").push is True

    # the device list's remove button (a plain form), and the script's turn-off (JSON with the endpoint)
    assert browser.post("/notifications/push/unsubscribe/", {"id": device.pk}).status_code == 302
    assert not PushSubscription.objects.exists()
    browser.post("/notifications/push/subscribe/", Browser(push_service.url("/page2")).to_json(),
                 content_type="application/json")
    off = browser.post("/notifications/push/unsubscribe/", {"endpoint": push_service.url("/page2")},
                       content_type="application/json")
    assert off.status_code == 200 and not PushSubscription.objects.exists()
    assert browser.post("/notifications/push/unsubscribe/", {"endpoint": push_service.url("/page2")},
                        content_type="application/json").status_code == 404


def test_service_worker_shows_pushes_and_opens_their_link(client):
    worker = client.get("/sw.js")
    source = worker.content.decode()
    assert worker["Service-Worker-Allowed"] == "/" and worker["Content-Type"].startswith("application/javascript")
    assert source.startswith('self.PUMASI_ICON = "/static/platform/icon-192.png"')
    assert 'addEventListener("push"' in source and 'addEventListener("notificationclick"' in source
    assert "showNotification" in source and "openWindow" in source and 'addEventListener("fetch"' in source


def test_vapid_key_is_kept_or_taken_from_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("PUMASI_VAPID_PRIVATE_KEY", raising=False)
    monkeypatch.setenv("PUMASI_VAPID_PRIVATE_KEY_FILE", str(tmp_path / "keys" / "vapid.pem"))
    first = webpush.vapid_public_key()
    assert (tmp_path / "keys" / "vapid.pem").stat().st_mode & 0o777 == 0o600
    assert webpush.vapid_public_key() == first and len(unb64url(first)) == 65  # kept, not made again

    key = ec.generate_private_key(ec.SECP256R1())
    raw_public = b64url(key.public_key().public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    monkeypatch.setenv("PUMASI_VAPID_PRIVATE_KEY", pem)
    assert webpush.vapid_public_key() == raw_public
    # the form `web-push generate-vapid-keys` prints: the private scalar in base64url
    monkeypatch.setenv("PUMASI_VAPID_PRIVATE_KEY", b64url(key.private_numbers().private_value.to_bytes(32, "big")))
    assert webpush.vapid_public_key() == raw_public
    _claims, k = verify_vapid(webpush.vapid_authorization("https://push.example.org/x/y"), "https://push.example.org")
    assert k == raw_public
    with pytest.raises(InvalidSignature):
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        token = webpush.vapid_authorization("https://push.example.org/").split("t=")[1].split(",")[0]
        head, claims, sig = token.split(".")
        raw = unb64url(sig)
        other.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                     f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))


def test_refusals_speak_the_persons_language(make_user, api_client_for):
    person = make_user(language="ko")
    body = _valid("http://push.example.org/x")
    response = api_client_for(person).post("/api/v1/push/subscriptions", body, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["title"] == "푸시 알림을 켜지 못했습니다."
    assert "https://" in response.json()["errors"]["endpoint"][0] and "주소" in response.json()["errors"]["endpoint"][0]
