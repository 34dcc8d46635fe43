"""Open formats: the Atom feed of a community's public activity, the one iCalendar writer
(RFC 5545) behind the bookings and milestone feeds, and the PWA manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from django.templatetags.static import static
from django.utils.cache import get_conditional_response
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from pumasi.communities.models import Community
from pumasi.core.errors import NotFound
from pumasi.platform.notifications import community_feed, event_title

ATOM_ENTRIES = 50


def public_community(slug: str) -> Community:
    """Only communities anyone may join publish an Atom feed; others are not found, so a private
    community's existence does not leak to feed readers."""
    community = Community.objects.filter(slug=slug, open_join=True).first()
    if community is None:
        raise NotFound("No such community.")
    return community


def atom_feed(community: Community, *, base_url: str) -> str:
    home = f"{base_url}/c/{community.slug}/"
    feed = Atom1Feed(
        title=_("%(name)s on pumasi") % {"name": community.name}, link=home,
        description=community.description or community.name, language="ko",
        feed_url=f"{base_url}/c/{community.slug}/feed.atom", author_name=community.name,
        feed_guid=f"tag:pumasi,2025:community:{community.pk}",
    )
    for event in community_feed(community)[:ATOM_ENTRIES]:
        feed.add_item(
            title=event_title(event), link=home, description=event.name,
            unique_id=f"tag:pumasi,2025:event:{event.pk}", pubdate=event.created_at, updateddate=event.created_at,
            author_name=community.name,
        )
    return feed.writeString("utf-8")


# --- iCalendar (RFC 5545, with the RFC 7986 calendar properties) ----------------------------------
#
# The one iCalendar writer: bookings, milestones and anything else that wants a calendar feed build
# CalendarItems and call icalendar(). What the RFC asks and calendar clients check: CRLF line
# endings and content lines folded at 75 octets without splitting a UTF-8 sequence (§3.1), TEXT
# values escaped and free of control characters (§3.3.11), a stable UID and a DTSTAMP per VEVENT
# (§3.6.1), UTC date-times with a trailing Z (§3.3.5), all-day events as VALUE=DATE with an
# exclusive DTEND (§3.6.1), and REFRESH-INTERVAL with VALUE=DURATION (RFC 7986 §5.7).

CRLF = "\r\n"
_CONTROL = {c: None for c in [*range(0x00, 0x09), *range(0x0B, 0x0D), *range(0x0E, 0x20), 0x7F]}
_URI_CONTROL = {**_CONTROL, 0x0A: None, 0x0D: None}  # a URI value has no escapes: nothing may break the line
STATUSES = ("TENTATIVE", "CONFIRMED", "CANCELLED")


@dataclass(frozen=True)
class CalendarItem:
    """One VEVENT. `end` is exclusive (an all-day item on 2 April ends on date(…, 4, 3)); `uid` must
    stay the same for the same thing across fetches, `sequence` must only grow."""

    uid: str
    summary: str
    start: datetime | date
    end: datetime | date | None = None
    description: str = ""
    location: str = ""
    url: str = ""
    updated: datetime | None = None
    created: datetime | None = None
    sequence: int = 0
    status: str = "CONFIRMED"
    transparent: bool = False
    geo: tuple[float, float] | None = None


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma and newlines escaped; other
    control characters, which the grammar forbids, dropped."""
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
        .replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")
        .translate(_CONTROL)
    )


def fold(line: str) -> str:
    """Lines longer than 75 octets are folded (RFC 5545 §3.1), never inside a UTF-8 character; the
    leading space of a continuation line counts towards its 75."""
    if len(line.encode("utf-8")) <= 75:
        return line
    parts: list[str] = []
    current, size, limit = [], 0, 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, 74
        current.append(char)
        size += width
    parts.append("".join(current))
    return (CRLF + " ").join(parts)


def uid_for(kind: str, pk) -> str:
    """A UID that stays the same whichever host name the feed was fetched through."""
    host = urlsplit(settings.PUMASI_SITE_URL).hostname or "pumasi"
    return f"{kind}-{pk}@{host}"


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("calendar times must be aware")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _when(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return ":" + _utc(value)
    return ";VALUE=DATE:" + value.strftime("%Y%m%d")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds <= 0:
        raise ValueError("a refresh interval must be positive")
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if seconds else "")


def _event(item: CalendarItem, stamp: str) -> list[str]:
    if item.status not in STATUSES:
        raise ValueError(f"unknown VEVENT status {item.status!r}")
    if item.end is not None:
        if isinstance(item.start, datetime) != isinstance(item.end, datetime):
            raise ValueError("DTSTART and DTEND must both be dates or both be date-times")
        if item.end <= item.start:
            raise ValueError("DTEND must be after DTSTART")
    lines = ["BEGIN:VEVENT", f"UID:{escape_text(item.uid)}", f"DTSTAMP:{stamp}", f"DTSTART{_when(item.start)}"]
    if item.end is not None:
        lines.append(f"DTEND{_when(item.end)}")
    lines += [f"SUMMARY:{escape_text(item.summary)}", f"SEQUENCE:{int(item.sequence)}", f"STATUS:{item.status}",
              f"TRANSP:{'TRANSPARENT' if item.transparent else 'OPAQUE'}"]
    if item.description:
        lines.append(f"DESCRIPTION:{escape_text(item.description)}")
    if item.location:
        lines.append(f"LOCATION:{escape_text(item.location)}")
    if item.geo is not None:
        lines.append(f"GEO:{float(item.geo[0]):.6f};{float(item.geo[1]):.6f}")
    if item.url:
        lines.append(f"URL:{item.url.translate(_URI_CONTROL)}")
    if item.created is not None:
        lines.append(f"CREATED:{_utc(item.created)}")
    if item.updated is not None:
        lines.append(f"LAST-MODIFIED:{_utc(item.updated)}")
    lines.append("END:VEVENT")
    return lines


def icalendar(items: Iterable[CalendarItem], *, name: str, now: datetime | None = None, description: str = "",
              time_zone: str = "", refresh: timedelta = timedelta(hours=1), source_url: str = "") -> str:
    """A published VCALENDAR with one VEVENT per item, as text with CRLF line endings. `now` is the
    DTSTAMP (with METHOD:PUBLISH, when this copy was made); `refresh` tells clients how often to
    fetch again, in both the standard (RFC 7986) and the older Microsoft/Apple spelling."""
    stamp = _utc(now or datetime.now(UTC))
    interval = _duration(refresh)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//pumasi//pumasi calendar feed//EN", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"NAME:{escape_text(name)}", f"X-WR-CALNAME:{escape_text(name)}"]
    if description:
        lines += [f"DESCRIPTION:{escape_text(description)}", f"X-WR-CALDESC:{escape_text(description)}"]
    if time_zone:
        lines.append(f"X-WR-TIMEZONE:{escape_text(time_zone)}")
    lines += [f"REFRESH-INTERVAL;VALUE=DURATION:{interval}", f"X-PUBLISHED-TTL:{interval}"]
    if source_url:
        lines.append(f"SOURCE;VALUE=URI:{source_url.translate(_URI_CONTROL)}")
    for item in items:
        lines += _event(item, stamp)
    lines.append("END:VCALENDAR")
    return CRLF.join(fold(line) for line in lines) + CRLF


def calendar_etag(items: Iterable[CalendarItem], **calendar) -> str:
    """A strong validator over what the feed says, leaving out the DTSTAMP that changes every fetch,
    so an unchanged calendar answers 304 Not Modified."""
    digest = hashlib.sha256(repr((sorted(calendar.items()), list(items))).encode("utf-8")).hexdigest()
    return f'"{digest[:32]}"'


def calendar_response(request, items: Iterable[CalendarItem], *, filename: str, name: str,
                      **calendar) -> HttpResponse:
    """The HTTP answer for a private feed URL: text/calendar, an ETag for conditional GET, kept out of
    shared caches (the URL is the credential)."""
    items = list(items)
    now = calendar.pop("now", None)
    etag = calendar_etag(items, name=name, **calendar)
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = HttpResponse(icalendar(items, name=name, now=now, **calendar).encode("utf-8"),
                                content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response


# --- PWA ------------------------------------------------------------------------------------------


def manifest() -> dict:
    return {
        "name": "pumasi 품앗이",
        "short_name": "pumasi",
        "description": _("Share what your community has and make things together."),
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1f6f50",
        "lang": "ko",
        "icons": [
            {"src": static("platform/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": static("platform/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": static("platform/icon-512-maskable.png"), "sizes": "512x512", "type": "image/png",
             "purpose": "maskable"},
        ],
    }
