"""Open formats: the Atom feed of a community's public activity, an iCalendar writer (RFC 5545)
for bookings and milestones, and the PWA manifest."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.templatetags.static import static
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


# --- iCalendar ------------------------------------------------------------------------------------


@dataclass
class CalendarItem:
    uid: str
    summary: str
    start: datetime | date
    end: datetime | date | None = None
    description: str = ""
    location: str = ""
    url: str = ""
    updated: datetime | None = None


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    """Lines longer than 75 octets are folded (RFC 5545 3.1), never inside a UTF-8 character."""
    out, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)


def _when(value: datetime | date) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("calendar times must be aware")
        return ":" + value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return ";VALUE=DATE:" + value.strftime("%Y%m%d")


def icalendar(items: Iterable[CalendarItem], *, name: str, now: datetime | None = None) -> str:
    """A VCALENDAR with one VEVENT per item. Other apps call this for bookings and milestones."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//pumasi//pumasi//EN", "CALSCALE:GREGORIAN",
             f"X-WR-CALNAME:{_escape(name)}"]
    for item in items:
        lines += ["BEGIN:VEVENT", f"UID:{_escape(item.uid)}", f"DTSTAMP:{stamp}", f"DTSTART{_when(item.start)}"]
        if item.end is not None:
            lines.append(f"DTEND{_when(item.end)}")
        lines.append(f"SUMMARY:{_escape(item.summary)}")
        if item.description:
            lines.append(f"DESCRIPTION:{_escape(item.description)}")
        if item.location:
            lines.append(f"LOCATION:{_escape(item.location)}")
        if item.url:
            lines.append(f"URL:{item.url}")
        if item.updated:
            lines.append(f"LAST-MODIFIED:{item.updated.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


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


SERVICE_WORKER = """// pumasi service worker: makes the app installable and shows an offline page for navigations.
const CACHE = "pumasi-v1";
const OFFLINE = "/offline/";
self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.add(OFFLINE)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (event) => {
  if (event.request.mode !== "navigate") return;
  event.respondWith(fetch(event.request).catch(() => caches.match(OFFLINE)));
});
"""
