"""Idempotency keys for POSTs that create money movements, bookings or orders, following the IETF
draft "The Idempotency-Key HTTP Header Field": the same key with the same request gets the same
answer; the same key with a different request gets 422; nothing is done twice.

Operations opt in with `pumasi.core.api.idempotent`. The key is reserved by inserting its row at
the start of one transaction that also holds the operation's work and, at the end, its answer.
A concurrent request with the same key therefore waits (on the unique index on PostgreSQL, on the
write lock on SQLite) until the first commits, and then replays the stored answer. Only success
(2xx) answers are kept: a refusal changed nothing, so its key is released for a corrected retry.
Keys are scoped per owner (the bearer token, else the signed-in person, else anonymous callers)
and expire after 24 hours (`prune_idempotency_keys` job).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from pumasi.platform.models import IdempotencyKey

logger = logging.getLogger("pumasi.api")
HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"


class KeyProblem(Exception):
    def __init__(self, status: int, title: str, code: str, detail: str = ""):
        self.status, self.title, self.code, self.detail = status, title, code, detail


def parse_key(raw: str) -> str:
    """The key as sent; a Structured Fields string ("…") is unquoted, a bare token taken as is."""
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise KeyProblem(400, _("The Idempotency-Key header is not valid."), "idempotency_key_invalid",
                         _("Send 1 to %(max)d printable characters, e.g. a UUID.") % {"max": MAX_KEY_LENGTH})
    return key


def owner_of(request) -> str:
    """Whose key space this request uses. A bearer secret is identified by its hash, so a key
    sent with one token is never answered to another."""
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return "token:" + hashlib.sha256(authorization[7:].strip().encode()).hexdigest()[:64]
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "anon"


def fingerprint(request) -> str:
    """SHA-256 over method, path, query and body; a JSON body is canonicalised so that key order
    and whitespace do not make the same request look different."""
    body = request.body or b""
    if (request.content_type or "").endswith("json"):
        try:
            body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
        except ValueError:
            pass
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.META.get("QUERY_STRING", "").encode(), body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _stored(owner: str, key: str) -> IdempotencyKey | None:
    found = IdempotencyKey.objects.filter(owner=owner, key=key, status_code__isnull=False).first()
    if found is not None and found.created_at < timezone.now() - TTL:
        IdempotencyKey.objects.filter(pk=found.pk).delete()  # expired: the key is free again
        return None
    return found


def _replay(found: IdempotencyKey, request, print_: str) -> HttpResponse:
    if found.fingerprint != print_ or found.method != request.method or found.path != request.path:
        raise KeyProblem(422, _("This Idempotency-Key was already used for a different request."),
                         "idempotency_key_reused",
                         _("Send a new key for a new request; reuse a key only to retry the very same request."))
    response = HttpResponse(found.response_body, status=found.status_code, content_type=found.content_type)
    response[REPLAYED_HEADER] = "true"
    return response


def run_idempotently(run, request, *args, **kwargs):
    """Run an API operation (Ninja's `Operation.run`) under the request's Idempotency-Key, if any."""
    from pumasi.core.api import problem_response

    raw = request.headers.get(HEADER)
    if raw is None:
        return run(request, *args, **kwargs)
    try:
        key = parse_key(raw)
        owner, print_ = owner_of(request), fingerprint(request)
        with transaction.atomic():
            found = _stored(owner, key)
            if found is not None:
                return _replay(found, request, print_)
            try:
                with transaction.atomic():
                    row = IdempotencyKey.objects.create(owner=owner, key=key, method=request.method,
                                                        path=request.path[:500], fingerprint=print_)
            except IntegrityError:
                # Another request with this key committed while this one waited for it.
                found = _stored(owner, key)
                if found is None:
                    raise KeyProblem(409, _("A request with this Idempotency-Key is in progress."),
                                     "idempotency_key_in_progress", _("Retry in a moment.")) from None
                return _replay(found, request, print_)
            response = run(request, *args, **kwargs)
            if 200 <= response.status_code < 300 and not getattr(response, "streaming", False):
                IdempotencyKey.objects.filter(pk=row.pk).update(
                    status_code=response.status_code, content_type=response.get("Content-Type", "")[:100],
                    response_body=response.content.decode("utf-8", errors="replace"))
            else:
                row.delete()  # nothing was done: a corrected retry may use the same key
            return response
    except KeyProblem as problem:
        return problem_response(problem.status, problem.title, detail=problem.detail or None, code=problem.code)


def prune(*, now=None, batch: int = 5000) -> int:
    """Delete keys older than 24 hours, in batches so no lock is held for long."""
    cutoff = (now or timezone.now()) - TTL
    deleted = 0
    while True:
        ids = list(IdempotencyKey.objects.filter(created_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += IdempotencyKey.objects.filter(pk__in=ids).delete()[0]
