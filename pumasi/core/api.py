"""The API shell every app's router hangs on: auth (session or token), scopes, rate limit,
and errors as application/problem+json (RFC 9457)."""

from __future__ import annotations

import functools
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DataError
from django.http import Http404, HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import translation
from ninja import NinjaAPI, Schema
from ninja.decorators import decorate_view
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, SessionAuth
from ninja.utils import contribute_operation_callback

from pumasi.core.errors import DomainError, PermissionDenied

logger = logging.getLogger("pumasi.api")
PROBLEM = "application/problem+json"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Problem(Schema):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str | None = None
    errors: dict[str, list[str]] | None = None


def problem_response(status: int, title: str, *, detail: str | None = None, code: str | None = None,
                     errors: dict | None = None, headers: dict | None = None) -> JsonResponse:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if code:
        body["code"] = code
    if errors:
        body["errors"] = errors
    response = JsonResponse(body, status=status, content_type=PROBLEM, json_dumps_params={"ensure_ascii": False})
    for key, value in (headers or {}).items():
        response[key] = value
    return response


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        self.retry_after = retry_after


def check_rate_limit(token_id: int) -> None:
    """Fixed one-minute window per token, kept in the cache (Redis when configured, so it holds
    across processes)."""
    limit = settings.PUMASI_API_RATE_LIMIT
    now = time.time()
    window = int(now // 60)
    key = f"rl:{token_id}:{window}"
    cache.add(key, 0, timeout=70)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=70)
        count = 1
    if count > limit:
        raise RateLimited(retry_after=max(1, int(60 - now % 60)))


class TokenAuth(HttpBearer):
    """Personal access tokens (`Authorization: Bearer pms_…`) and the OAuth access tokens of client
    applications; the latter are confined to the community that registered the client."""

    def authenticate(self, request: HttpRequest, token: str):
        from pumasi.platform.selectors import active_token_for_secret
        from pumasi.platform.services import touch_api_token

        found = active_token_for_secret(token)
        oauth = False
        if found is None:
            from pumasi.platform.oidc import api_token_for_access_token  # OAuth tokens of client apps

            found = api_token_for_access_token(token)
            oauth = True
        if found is None:
            return None
        check_rate_limit(found.pk)
        touch_api_token(token=found)
        if found.user.language in {"ko", "en"}:
            # Messages (problem+json titles) in the owner's profile language, as pages are;
            # the language middleware ran before the token was known.
            translation.activate(found.user.language)
            request.LANGUAGE_CODE = found.user.language
        if oauth:
            from pumasi.platform.oidc import confine_to_client_community

            # Here, once for every operation, rather than in each endpoint: a client registered by
            # one community never reaches another one's data, whatever else its person belongs to.
            confine_to_client_community(request, found)
        if request.method in SAFE_METHODS and "read" not in found.scopes:
            raise PermissionDenied("This token lacks the 'read' scope.")
        request.user = found.user
        request.api_token = found
        return found.user


def client_community(request: HttpRequest):
    """The community a client application's OAuth token is confined to; None for browser sessions
    and personal access tokens. Operations without a community in their path that list a person's
    things across communities filter to it."""
    return getattr(getattr(request, "api_token", None), "community", None)


class BrowserSessionAuth(SessionAuth):
    def authenticate(self, request: HttpRequest, key):
        user = super().authenticate(request, key)
        if user is not None:
            request.api_token = None
        return user


def require_scope(request: HttpRequest, scope: str) -> None:
    """Browser sessions may do what the person may; tokens only what their scopes allow."""
    token = getattr(request, "api_token", None)
    if token is not None and scope not in token.scopes:
        raise PermissionDenied(f"This token lacks the '{scope}' scope.")


IDEMPOTENCY_PARAMETER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "description": "Send the same key to retry safely: the first answer is replayed for 24 hours; "
                   "the same key with a different request is refused (422).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def idempotent(func):
    """Opt an API operation into Idempotency-Key handling (pumasi.platform.idempotency).

    Put it below the `@router.post(...)` line. It wraps Ninja's whole operation run, so the stored
    answer is the exact response the client got, and it marks the operation in the OpenAPI document.
    """

    def wrap_run(run):
        @functools.wraps(run)
        def run_with_key(request, *args, **kwargs):
            from pumasi.platform.idempotency import run_idempotently

            return run_idempotently(run, request, *args, **kwargs)

        return run_with_key

    def mark(operation) -> None:
        operation.openapi_extra = {**(operation.openapi_extra or {}), "x-idempotent": True}

    contribute_operation_callback(func, mark)
    return decorate_view(wrap_run)(func)


class PumasiAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if not isinstance(operation, dict):
                    continue
                if operation.get("x-idempotent"):
                    parameters = operation.setdefault("parameters", [])
                    if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                        parameters.append(IDEMPOTENCY_PARAMETER)
        _partial_times(schema)
        return schema


def _partial_times(node) -> None:
    """Pydantic documents a `datetime.time` as JSON Schema's "time" format, which (RFC 3339
    full-time) requires an offset; our times of day have none. Say what they are: partial-time."""
    if isinstance(node, dict):
        if node.get("format") == "time" and node.get("type") == "string":
            node["format"] = "partial-time"
            node.setdefault("pattern", r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$")
        for value in node.values():
            _partial_times(value)
    elif isinstance(node, list):
        for value in node:
            _partial_times(value)


api = PumasiAPI(
    title="pumasi API",
    version="1",
    description="The open API of pumasi. Errors are application/problem+json. Lists use cursor pagination.",
    auth=[TokenAuth(), BrowserSessionAuth()],
    urls_namespace="api",
    docs_url="/docs",
)


@api.exception_handler(DomainError)
def _domain_error(request, exc: DomainError):
    return problem_response(exc.status, exc.message, code=exc.code, errors=exc.field_errors or None)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    errors: dict[str, list[str]] = {}
    for item in exc.errors:
        loc = [str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path", "payload", "form")]
        errors.setdefault(".".join(loc) or "request", []).append(item.get("msg", "invalid"))
    return problem_response(422, "The request is not valid.", code="invalid_input", errors=errors)


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    return problem_response(
        401, "Authentication required.", detail="Sign in, or send a valid token as 'Authorization: Bearer …'.",
        code="unauthenticated", headers={"WWW-Authenticate": 'Bearer realm="pumasi"'},
    )


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    return problem_response(
        429, "Too many requests.", detail=f"Try again in {exc.retry_after} s.", code="rate_limited",
        headers={"Retry-After": str(exc.retry_after)},
    )


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problem_response(exc.status_code, str(exc), code="error")


@api.exception_handler(MultiPartParserError)
def _bad_multipart(request, exc):
    return problem_response(400, "The multipart body could not be read.", detail=str(exc), code="bad_request")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem_response(404, "Not found.", code="not_found")


@api.exception_handler(DataError)
def _data_error(request, exc):
    # A value that passed validation but not the database (a date with a time-zone offset
    # PostgreSQL cannot store, a number beyond its column): the transaction was rolled back,
    # nothing was written, and the caller can correct the request.
    return problem_response(
        422, "A value is outside what can be stored.", detail=str(exc).splitlines()[0][:300], code="invalid_input",
    )


@api.exception_handler(Exception)
def _unexpected(request, exc):
    logger.exception("unexpected API error on %s %s", request.method, request.path)
    return problem_response(500, "Something went wrong on our side.", code="server_error")
