"""An RFC 5545 iCalendar feed of a workspace's milestones, written by hand.

What the RFC asks and calendar clients check: CRLF line endings (§3.1), content lines folded
at 75 octets without splitting a UTF-8 sequence (§3.1), TEXT values escaped (§3.3.11),
a stable UID and a DTSTAMP per VEVENT (§3.6.1), and all-day events as VALUE=DATE with an
exclusive DTEND (§3.6.1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

CRLF = "\r\n"


def escape_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
        .replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Split a content line into chunks of at most 75 octets; continuation lines start with a space."""
    encoded = line.encode("utf-8")
    if len(encoded) <= 75:
        return line
    parts: list[str] = []
    current = b""
    limit = 75
    for char in line:
        piece = char.encode("utf-8")
        if len(current) + len(piece) > limit:
            parts.append(current.decode("utf-8"))
            current = b""
            limit = 74  # the leading space of a continuation line counts
        current += piece
    parts.append(current.decode("utf-8"))
    return (CRLF + " ").join(parts)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_for(*, workspace, milestones, host: str, now: datetime) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//pumasi//cocreation workspace calendar//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(workspace.title)}",
        f"X-WR-TIMEZONE:{workspace.community.time_zone}",
    ]
    for milestone in milestones:
        summary = milestone.title + (" ✓" if milestone.done else "")
        lines += [
            "BEGIN:VEVENT",
            f"UID:milestone-{milestone.pk}@{host}",
            f"DTSTAMP:{_utc(now)}",
            f"LAST-MODIFIED:{_utc(milestone.updated_at)}",
            f"SEQUENCE:{milestone.sequence}",
            f"DTSTART;VALUE=DATE:{milestone.starts_on:%Y%m%d}",
            f"DTEND;VALUE=DATE:{milestone.due_on + timedelta(days=1):%Y%m%d}",
            f"SUMMARY:{escape_text(summary)}",
        ]
        if milestone.description:
            lines.append(f"DESCRIPTION:{escape_text(milestone.description)}")
        lines += [f"STATUS:{'CONFIRMED'}", "TRANSP:TRANSPARENT", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return CRLF.join(fold(line) for line in lines) + CRLF
