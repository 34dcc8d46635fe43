"""Cursor pagination for API lists: stable under inserts, opaque to clients."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.db.models import QuerySet

from pumasi.core.errors import InvalidInput

MAX_LIMIT = 200


def _encode(pk: int) -> str:
    return base64.urlsafe_b64encode(str(pk).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("The cursor is not one this API gave out.", field_errors={"cursor": ["unknown cursor"]}) from exc


def paginate(queryset: QuerySet, *, cursor: str | None, limit: int, newest_first: bool = True) -> dict[str, Any]:
    """One page by primary key: `items` plus `next_cursor` (None on the last page)."""
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.", field_errors={"limit": ["out of range"]})
    ordered = queryset.order_by("-pk" if newest_first else "pk")
    if cursor:
        after = _decode(cursor)
        ordered = ordered.filter(pk__lt=after) if newest_first else ordered.filter(pk__gt=after)
    rows = list(ordered[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": _encode(rows[-1].pk) if more and rows else None}
