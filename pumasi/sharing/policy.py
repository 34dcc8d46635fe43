"""The one sharing-policy engine: may this person use this resource from t1 to t2, and at what price.

Booking, walk-in detection and the board all ask `decide`. Rules are weekly windows in the
zone's own time zone: a window covers an instant when the instant's wall-clock time there
falls in [start, end) on one of the window's days (the day the window *starts* on, so
18:00–09:00 on Friday covers Saturday 03:00). On a public holiday only windows marked for
holidays apply. Where several windows cover an instant, the one for the most specific
audience the person belongs to wins (holders > members > anyone).

The engine cuts [t1, t2) at every instant where the answer could change — window edges on
each local day (both readings of an ambiguous wall time), local midnights and time-zone
offset changes — and judges each piece once, so it is exact and costs a few dozen steps per
day of stay, not one per minute.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

ANYONE, MEMBERS, HOLDERS = "anyone", "members", "holders"
RANK = {ANYONE: 0, MEMBERS: 1, HOLDERS: 2}
HOLIDAY_BIT = 7
DAY_NAMES = (gettext_noop("Mon"), gettext_noop("Tue"), gettext_noop("Wed"), gettext_noop("Thu"), gettext_noop("Fri"),
             gettext_noop("Sat"), gettext_noop("Sun"), gettext_noop("Holidays"))
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    days: int
    start: int  # minutes after local midnight
    end: int  # end <= start: crosses midnight (equal: the whole day)
    audience: str
    fee_per_hour: int = 0
    max_stay_minutes: int | None = None
    notice_minutes: int = 0
    resource_kind: str = ""

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def on_day(self, kind: int) -> bool:
        return bool(self.days & (1 << kind))

    def describe(self) -> str:
        days = ", ".join(_(DAY_NAMES[i]) for i in range(8) if self.days & (1 << i))
        return _("'%(name)s' (%(days)s %(start)s–%(end)s, %(who)s)") % {
            "name": self.name, "days": days, "start": _hhmm(self.start), "end": _hhmm(self.end),
            "who": audience_label(self.audience),
        }


def audience_label(audience: str) -> str:
    return {ANYONE: _("anyone"), MEMBERS: _("members"), HOLDERS: _("permit holders")}[audience]


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def rule_from_window(window) -> Rule:
    return Rule(
        id=window.pk, name=window.name, days=window.days,
        start=window.start_time.hour * 60 + window.start_time.minute,
        end=window.end_time.hour * 60 + window.end_time.minute,
        audience=window.audience, fee_per_hour=window.fee_per_hour, max_stay_minutes=window.max_stay_minutes,
        notice_minutes=window.notice_minutes, resource_kind=window.resource_kind,
    )


@dataclass
class Piece:
    start: datetime
    end: datetime
    rule: Rule | None


@dataclass
class Decision:
    allowed: bool
    fee: int = 0
    audience: str = ANYONE
    reasons: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    pieces: list[Piece] = field(default_factory=list)

    def refuse(self, code: str, reason: str) -> None:
        self.allowed = False
        self.codes.append(code)
        self.reasons.append(reason)

    @property
    def reason(self) -> str:
        return " ".join(self.reasons)


@lru_cache(maxsize=64)
def tz_of(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def day_kind(day: date, holidays: frozenset[date]) -> int:
    return HOLIDAY_BIT if day in holidays else day.weekday()


def covering_rules(instant: datetime, rules: list[Rule], tz, holidays: frozenset[date]) -> list[Rule]:
    """The rules covering this instant, by the wall-clock definition in the module docstring."""
    local = instant.astimezone(tz)
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    today = local.date()
    kind_today = day_kind(today, holidays)
    kind_yesterday = day_kind(today - timedelta(days=1), holidays)
    found = []
    for rule in rules:
        if rule.crosses_midnight:
            hit = (minute >= rule.start and rule.on_day(kind_today)) or (
                minute < rule.end and rule.on_day(kind_yesterday)
            )
        else:
            hit = rule.start <= minute < rule.end and rule.on_day(kind_today)
        if hit:
            found.append(rule)
    return found


def _wall_to_instants(day: date, minutes: int, tz) -> list[datetime]:
    """Both readings (fold 0 and 1) of a local wall time, as UTC instants."""
    wall = datetime.combine(day, time(minutes // 60, minutes % 60))
    return [wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)]


def _offset_changes(start: datetime, end: datetime, tz) -> list[datetime]:
    """Instants in (start, end) where the zone's UTC offset changes, found by bisection per day."""
    found = []
    step = timedelta(hours=24)
    cursor = start
    while cursor < end:
        nxt = min(cursor + step, end)
        if cursor.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = cursor, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi.replace(microsecond=0))
        cursor = nxt
    return found


def pieces(t1: datetime, t2: datetime, rules: list[Rule], tz_name: str, holidays: frozenset[date],
           audiences: set[str]) -> list[Piece]:
    """Cut [t1, t2) where the governing rule may change; each piece carries the rule that
    governs it for a person in `audiences` (None: nobody of theirs may use it then)."""
    tz = tz_of(tz_name)
    mine = [rule for rule in rules if rule.audience in audiences]
    cuts = {t1, t2}
    first_day = t1.astimezone(tz).date() - timedelta(days=1)
    last_day = t2.astimezone(tz).date() + timedelta(days=1)
    day = first_day
    while day <= last_day:
        edges = {0}
        for rule in mine:
            edges.add(rule.start)
            edges.add(rule.end)
        for minutes in edges:
            for instant in _wall_to_instants(day, minutes, tz):
                if t1 < instant < t2:
                    cuts.add(instant)
        day += timedelta(days=1)
    cuts.update(_offset_changes(t1, t2, tz))
    ordered = sorted(cuts)
    result: list[Piece] = []
    for start, end in zip(ordered, ordered[1:], strict=False):
        middle = start + (end - start) / 2
        covering = covering_rules(middle, mine, tz, holidays)
        best = max(covering, key=lambda r: (RANK[r.audience], -r.id), default=None)
        if result and result[-1].rule == best:
            result[-1].end = end
        else:
            result.append(Piece(start, end, best))
    return result


def decide(*, t1: datetime, t2: datetime, rules: list[Rule], tz_name: str, holidays: frozenset[date],
           audiences: set[str], now: datetime | None = None, check_notice: bool = True) -> Decision:
    """May someone belonging to `audiences` use the resource from t1 to t2, and at what price."""
    decision = Decision(allowed=True, audience=max(audiences, key=RANK.__getitem__))
    if t2 <= t1:
        decision.refuse("empty", _("The end must be after the start."))
        return decision
    decision.pieces = pieces(t1, t2, rules, tz_name, holidays, audiences)
    tz = tz_of(tz_name)
    for piece in decision.pieces:
        if piece.rule is None:
            others = covering_rules(piece.start + (piece.end - piece.start) / 2, rules, tz, holidays)
            local_from = piece.start.astimezone(tz).strftime("%a %H:%M")
            local_to = piece.end.astimezone(tz).strftime("%a %H:%M")
            if others:
                decision.refuse("audience", _("From %(start)s to %(end)s only %(who)s may use it: rule %(rule)s.") % {
                    "start": local_from, "end": local_to, "who": audience_label(others[0].audience),
                    "rule": others[0].describe()})
            else:
                decision.refuse("closed", _("No rule opens it from %(start)s to %(end)s.") % {
                    "start": local_from, "end": local_to})
    decision.fee = fee_of(decision.pieces)
    if not decision.allowed:
        return decision
    used = {piece.rule for piece in decision.pieces}
    stay = (t2 - t1).total_seconds() / 60
    for rule in sorted(used, key=lambda r: r.id):
        if rule.max_stay_minutes is not None and stay > rule.max_stay_minutes:
            decision.refuse("too_long", _("At most %(minutes)d minutes under rule %(rule)s.") % {
                "minutes": rule.max_stay_minutes, "rule": rule.describe()})
            break
    if check_notice and now is not None:
        for rule in sorted(used, key=lambda r: r.id):
            if rule.notice_minutes and t1 < now + timedelta(minutes=rule.notice_minutes):
                decision.refuse("notice", _("Book at least %(minutes)d minutes ahead under rule %(rule)s.") % {
                    "minutes": rule.notice_minutes, "rule": rule.describe()})
                break
    return decision


def fee_of(cut: list[Piece]) -> int:
    """fee_per_hour × seconds, summed exactly, rounded up once to a whole minor unit."""
    total = sum(int((p.end - p.start).total_seconds()) * p.rule.fee_per_hour for p in cut if p.rule is not None)
    return -(-total // 3600)


def _segments(rule: Rule) -> list[tuple[int, int, int]]:
    """(day kind, from, to) minutes of the week a rule covers; what spills past midnight after
    a holiday may fall on any day, so it is counted on all of them (the cautious reading)."""
    out = []
    for kind in range(8):
        if not rule.on_day(kind):
            continue
        if not rule.crosses_midnight:
            out.append((kind, rule.start, rule.end))
            continue
        out.append((kind, rule.start, MINUTES_PER_DAY))
        if rule.end > 0:
            # The next day may itself be a public holiday, so a spill counts there too.
            following = range(8) if kind == HOLIDAY_BIT else [(kind + 1) % 7, HOLIDAY_BIT]
            out.extend((after, 0, rule.end) for after in following)
    return out


def contradictions(rules: list[Rule]) -> list[tuple[Rule, Rule]]:
    """Pairs of rules that give the same audience (for the same kind of resource) two answers
    at the same time. A policy with any of these is refused on save."""
    found = []
    for index, first in enumerate(rules):
        for second in rules[index + 1:]:
            if first.audience != second.audience:
                continue
            if first.resource_kind and second.resource_kind and first.resource_kind != second.resource_kind:
                continue
            if any(
                a_kind == b_kind and a_from < b_to and b_from < a_to
                for a_kind, a_from, a_to in _segments(first)
                for b_kind, b_from, b_to in _segments(second)
            ):
                found.append((first, second))
    return found
