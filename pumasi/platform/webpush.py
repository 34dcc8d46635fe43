"""Web Push for installed PWA users: the VAPID key (RFC 8292), browsers' push subscriptions, and
delivery of notifications encrypted for the browser (RFC 8291, aes128gcm of RFC 8188).

A notification is pushed by one job per notification (queued on commit by `notify` and the
followers' fan-out) to the person's active subscriptions. Each (subscription, notification) pair
is claimed by a unique PushDelivery row before the request goes out, so a job that runs again
pushes nothing twice. A push service answering 404 or 410 ended the subscription: it is disabled
at once; any other failure is counted, and MAX_FAILURES in a row disable it. A failed push is not
retried: the notification stays in the app and in the e-mail as chosen.

Encryption and the VAPID token are written here on `cryptography` and PyJWT rather than taken
from pywebpush, so the tests can check both against independent implementations (http_ece).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import re
import socket
import struct
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import jwt
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from pumasi import config
from pumasi.core.errors import InvalidInput, NotFound
from pumasi.platform.models import Notification, PushDelivery, PushSubscription
from pumasi.platform.services import record_audit

logger = logging.getLogger("pumasi.webpush")

TTL_SECONDS = 24 * 3600  # a device offline for longer gets no stale pushes; the app still has them
TIMEOUT_SECONDS = 10
MAX_FAILURES = 5
MAX_DEVICES = 20  # per person; the oldest go when a 21st browser subscribes
RECORD_SIZE = 4096
# One aes128gcm record: 86-byte header, 16-byte tag, 1 delimiter octet (RFC 8291 section 4).
MAX_PLAINTEXT = RECORD_SIZE - 86 - 16 - 1
P256DH_BYTES = 65
AUTH_BYTES = 16
USER_AGENT = "pumasi-webpush/1"
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


# --- Base64url (RFC 4648 section 5, padding optional as browsers send it) ------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode, or raise ValueError for anything that is not base64url."""
    if not isinstance(text, str) or not _B64URL.match(text):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


# --- The VAPID key: configured, or generated on first use and kept under var/ --------------------


def _generate_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def vapid_private_key_text() -> str:
    """PUMASI_VAPID_PRIVATE_KEY (PEM, or the base64url private key `web-push generate-vapid-keys`
    prints) or PUMASI_VAPID_PRIVATE_KEY_FILE win; otherwise var/vapid_p256.pem, created once.

    As with the OpenID key, the new key is written to a temporary file and hard-linked into place,
    so two processes starting together cannot each keep a different key: the second link fails
    and it reads the first. Browsers subscribed with the public key; a new key would orphan them.
    """
    configured = os.environ.get("PUMASI_VAPID_PRIVATE_KEY")
    if configured:
        return configured
    path = Path(os.environ.get("PUMASI_VAPID_PRIVATE_KEY_FILE") or config.var_dir() / "vapid_p256.pem")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vapid-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_generate_pem())
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return path.read_text()


@lru_cache(maxsize=4)
def _load_key(text: str) -> ec.EllipticCurvePrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        key = ec.derive_private_key(int.from_bytes(b64url_decode(text), "big"), ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("The VAPID key must be a P-256 (prime256v1) private key.")
    return key


def vapid_key() -> ec.EllipticCurvePrivateKey:
    return _load_key(vapid_private_key_text())


def _raw_public(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def vapid_public_key() -> str:
    """The applicationServerKey browsers subscribe with: base64url of the uncompressed point."""
    return b64url(_raw_public(vapid_key().public_key()))


def vapid_subject() -> str:
    """Who push services may contact about our pushes (RFC 8292 section 2.1)."""
    _name, address = parseaddr(getattr(settings, "DEFAULT_FROM_EMAIL", "") or "")
    site = getattr(settings, "PUMASI_SITE_URL", "") or ""
    if site.startswith("https://") and (not address or address.endswith("@localhost")):
        return site
    return f"mailto:{address or 'noreply@localhost'}"


def vapid_authorization(endpoint: str, *, now: float | None = None) -> str:
    """The `Authorization: vapid t=<JWT>, k=<public key>` header for a push to this endpoint."""
    parsed = urlparse(endpoint)
    now = time.time() if now is None else now
    claims = {"aud": f"{parsed.scheme}://{parsed.netloc}", "exp": int(now) + 12 * 3600, "sub": vapid_subject()}
    key = vapid_key()
    token = jwt.encode(claims, key, algorithm="ES256", headers={"typ": "JWT"})
    return f"vapid t={token}, k={b64url(_raw_public(key.public_key()))}"


# --- Message encryption (RFC 8291 with RFC 8188 aes128gcm) ---------------------------------------


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def encrypt(plaintext: bytes, *, p256dh: bytes, auth: bytes, salt: bytes | None = None,
            server_key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """The body of one push message: header (salt, record size, our ephemeral public key) and one
    AES-128-GCM record, keyed from ECDH with the browser's key and its auth secret."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"push payload of {len(plaintext)} bytes exceeds {MAX_PLAINTEXT}")
    salt = salt or os.urandom(16)
    server_key = server_key or ec.generate_private_key(ec.SECP256R1())
    ua_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    as_public = _raw_public(server_key.public_key())
    shared = server_key.exchange(ec.ECDH(), ua_public)
    # HKDF with a single 32-byte block each time: extract is one HMAC, expand is HMAC(info || 0x01).
    prk_key = _hmac_sha256(auth, shared)
    ikm = _hmac_sha256(prk_key, b"WebPush: info\x00" + p256dh + as_public + b"\x01")
    prk = _hmac_sha256(salt, ikm)
    cek = _hmac_sha256(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac_sha256(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)  # 0x02: the last (only) record
    return salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public + record


# --- Subscriptions -------------------------------------------------------------------------------


def loopback_allowed() -> bool:
    """Plain http to a loopback push service only while developing or testing."""
    return bool(getattr(settings, "PUMASI_PUSH_LOOPBACK", settings.DEBUG))


def _address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_loopback:
        return loopback_allowed()
    return ip.is_global


def _endpoint_errors(endpoint) -> list[str]:
    usage = _("Give the https:// endpoint of the browser's push service (at most 1000 characters).")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 1000:
        return [usage]
    try:
        parsed = urlparse(endpoint)
        host, _port = parsed.hostname, parsed.port
    except ValueError:
        return [usage]
    if not host or parsed.username or parsed.password or any(c.isspace() for c in endpoint):
        return [usage]
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    loopback = (literal is not None and literal.is_loopback) or host == "localhost" or host.endswith(".localhost")
    if parsed.scheme == "http" and loopback and loopback_allowed():
        return []
    if parsed.scheme != "https":
        return [usage]
    if loopback and not loopback_allowed() or (literal is not None and not loopback and not literal.is_global):
        return [_("Push services are on the public internet; this address is not.")]
    return []


def _key_errors(text, size: int) -> list[str]:
    try:
        raw = b64url_decode(text)
    except (ValueError, TypeError):
        return [_("Give the key as base64url text.")]
    if len(raw) != size:
        return [_("The key must be %(size)d bytes; this one is %(length)d.") % {"size": size, "length": len(raw)}]
    return []


def validate_subscription(endpoint, p256dh, auth) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if e := _endpoint_errors(endpoint):
        errors["endpoint"] = e
    if e := _key_errors(p256dh, P256DH_BYTES):
        errors["keys.p256dh"] = e
    else:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(p256dh))
        except ValueError:
            errors["keys.p256dh"] = [_("This is not a P-256 public key.")]
    if e := _key_errors(auth, AUTH_BYTES):
        errors["keys.auth"] = e
    return errors


def _expiry(expiration_time) -> datetime | None:
    """The Push API's expirationTime: milliseconds since 1970, or null. ValueError otherwise."""
    if expiration_time is None:
        return None
    if isinstance(expiration_time, bool):
        raise ValueError("not a time")
    try:
        return datetime.fromtimestamp(int(expiration_time) / 1000, tz=UTC)
    except (TypeError, OverflowError, OSError) as exc:
        raise ValueError("not a time") from exc


def subscribe(*, user, endpoint: str, p256dh: str, auth: str, expiration_time: int | None = None,
              label: str = "") -> PushSubscription:
    """Keep a browser's subscription for this person. The same endpoint again (the browser renewed
    its keys, or someone else signed in on that device) updates the one row and turns it back on."""
    errors = validate_subscription(endpoint, p256dh, auth)
    expires_at = None
    try:
        expires_at = _expiry(expiration_time)
    except ValueError:
        errors["expirationTime"] = [_("Milliseconds since 1970, or null.")]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expirationTime"] = [_("This subscription has already expired.")]
    if errors:
        raise InvalidInput(_("Push notifications were not turned on."), field_errors=errors)
    fields = {"user": user, "p256dh": p256dh.rstrip("="), "auth": auth.rstrip("="), "label": (label or "")[:200],
              "expires_at": expires_at, "failures": 0, "disabled_at": None, "disabled_reason": ""}
    with transaction.atomic():
        found = PushSubscription.objects.select_for_update().filter(endpoint=endpoint).first()
        if found is None:
            try:
                with transaction.atomic():
                    found = PushSubscription.objects.create(endpoint=endpoint, **fields)
                action = "push_subscription.created"
            except IntegrityError:  # the same browser posted twice at once; the other insert won
                found = PushSubscription.objects.select_for_update().get(endpoint=endpoint)
                action = ""
        else:
            action = ""
        if not action:
            action = "push_subscription.renewed" if found.user_id == user.pk else "push_subscription.moved"
            for name, value in fields.items():
                setattr(found, name, value)
            found.save()
        record_audit(actor=user, action=action, obj=found,
                     changes={"push_service": urlparse(endpoint).netloc, "device": found.label})
        _prune_devices(user)
    return found


def _prune_devices(user) -> None:
    keep = list(PushSubscription.objects.filter(user=user).order_by("-created_at", "-pk")
                .values_list("pk", flat=True)[:MAX_DEVICES])
    PushSubscription.objects.filter(user=user).exclude(pk__in=keep).delete()


def unsubscribe(*, user, subscription_id: int | None = None, endpoint: str | None = None) -> None:
    """Forget one of the person's subscriptions, named by id or by endpoint."""
    query = PushSubscription.objects.filter(user=user)
    if subscription_id is not None:
        query = query.filter(pk=subscription_id)
    elif endpoint:
        query = query.filter(endpoint=endpoint)
    else:
        raise InvalidInput(_("Push notifications were not turned off."),
                           field_errors={"endpoint": [_("Say which subscription to end.")]})
    with transaction.atomic():
        found = query.select_for_update().first()
        if found is None:
            raise NotFound(_("No such push subscription."))
        record_audit(actor=user, action="push_subscription.deleted", obj=found,
                     changes={"push_service": urlparse(found.endpoint).netloc})
        found.delete()


def device_label(user_agent: str) -> str:
    """"Firefox · Android" from a User-Agent header, to tell a person's devices apart on the page."""
    ua = user_agent or ""
    browser = next((name for token, name in (("Edg/", "Edge"), ("SamsungBrowser", "Samsung Internet"),
                                             ("Whale/", "Whale"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
                                             ("Safari/", "Safari")) if token in ua), "")
    system = next((name for token, name in (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"),
                                            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
                                            ("Linux", "Linux")) if token in ua), "")
    return " · ".join(part for part in (browser, system) if part) or ua[:60]


def subscriptions_of(user):
    return PushSubscription.objects.filter(user=user).order_by("-created_at", "-pk")


def has_active_subscription(user_id: int) -> bool:
    return PushSubscription.objects.filter(user_id=user_id, disabled_at__isnull=True).exists()


# --- Delivery ------------------------------------------------------------------------------------


def payload_for(notification: Notification, unread: int) -> bytes:
    """{id, title, body, url, unread} as UTF-8 JSON, the body shortened to fit one record."""
    data = {"id": notification.pk, "title": notification.title, "body": notification.body or "",
            "url": notification.url or "/notifications/", "unread": unread}
    encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    while len(encoded) > MAX_PLAINTEXT:
        if data["body"] in ("", "…"):  # a title and link that long cannot happen (200 + 500 characters)
            raise ValueError("push payload does not fit")
        room = len(data["body"].encode()) - (len(encoded) - MAX_PLAINTEXT) - len("…".encode())
        data["body"] = data["body"].encode()[: max(0, room)].decode(errors="ignore").rstrip() + "…"
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return encoded


def _resolves_to_allowed(endpoint: str) -> bool:
    """Checked at send time too: a public-looking name may point into our own network."""
    parsed = urlparse(endpoint)
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return True  # let the request fail and count as an ordinary failure
    return all(_address_allowed(info[4][0]) for info in infos)


def _post(endpoint: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))[:300]


def send(subscription: PushSubscription, plaintext: bytes) -> tuple[int | None, str]:
    """One encrypted push to one subscription: (HTTP status or None, error text)."""
    if not _resolves_to_allowed(subscription.endpoint):
        return None, "address not allowed"
    body = encrypt(plaintext, p256dh=b64url_decode(subscription.p256dh), auth=b64url_decode(subscription.auth))
    headers = {
        "Authorization": vapid_authorization(subscription.endpoint), "TTL": str(TTL_SECONDS),
        "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream", "Urgency": "normal",
        "User-Agent": USER_AGENT,
    }
    return _post(subscription.endpoint, headers, body)


def _disable(subscription: PushSubscription, reason: str, status: int | None) -> None:
    subscription.disabled_at = timezone.now()
    subscription.disabled_reason = reason
    record_audit(actor=None, action="push_subscription.disabled", obj=subscription,
                 changes={"reason": reason, "status": status})


def _record(delivery_id: int, subscription_id: int, status: int | None, error: str) -> None:
    ok = status is not None and 200 <= status < 300
    now = timezone.now()
    with transaction.atomic():
        PushDelivery.objects.filter(pk=delivery_id).update(status_code=status, error=error[:300],
                                                           delivered_at=now if ok else None)
        subscription = PushSubscription.objects.select_for_update().filter(pk=subscription_id).first()
        if subscription is None:
            return
        if ok:
            subscription.failures = 0
            subscription.last_success_at = now
        elif subscription.disabled_at is None and status in (404, 410):
            _disable(subscription, "the push service ended this subscription", status)
        elif subscription.disabled_at is None and error == "address not allowed":
            _disable(subscription, "the push service's address is not public", status)
        else:
            subscription.failures += 1
            if subscription.disabled_at is None and subscription.failures >= MAX_FAILURES:
                _disable(subscription, f"{MAX_FAILURES} pushes in a row failed", status)
        subscription.save(update_fields=["failures", "last_success_at", "disabled_at", "disabled_reason"])


def push_notification(notification_id: int) -> int:
    """Push one notification to its recipient's active subscriptions; returns how many were
    attempted now (0 when the person turned push off for the kind, or it was done already)."""
    from pumasi.platform.notifications import push_choice, unread_count

    notification = Notification.objects.select_related("recipient").filter(pk=notification_id).first()
    if notification is None or not notification.recipient.is_active:
        return 0
    if not push_choice(notification.recipient, notification.kind):
        return 0
    subscriptions = list(PushSubscription.objects.filter(user_id=notification.recipient_id, disabled_at__isnull=True))
    if not subscriptions:
        return 0
    plaintext = payload_for(notification, unread_count(notification.recipient))
    attempted = 0
    for subscription in subscriptions:
        if subscription.expires_at is not None and subscription.expires_at <= timezone.now():
            with transaction.atomic():
                locked = PushSubscription.objects.select_for_update().get(pk=subscription.pk)
                if locked.disabled_at is None:
                    _disable(locked, "the subscription expired", None)
                    locked.save(update_fields=["disabled_at", "disabled_reason"])
            continue
        try:
            with transaction.atomic():
                delivery = PushDelivery.objects.create(subscription=subscription, notification=notification)
        except IntegrityError:
            continue  # pushed (or being pushed) by an earlier run of this job
        try:
            status, error = send(subscription, plaintext)
        except Exception as exc:  # one broken subscription must not hold up the others
            logger.exception("push %s to subscription %s failed", notification_id, subscription.pk)
            status, error = None, f"{type(exc).__name__}: {exc}"[:300]
        _record(delivery.pk, subscription.pk, status, error)
        attempted += 1
    return attempted
