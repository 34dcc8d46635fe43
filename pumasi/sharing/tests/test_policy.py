"""The policy engine against an independent minute-by-minute oracle (hypothesis), and the
contradiction check. Pure functions: no database."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta

from django.utils import translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pumasi.sharing import policy
from pumasi.sharing.policy import ANYONE, HOLDERS, MEMBERS, Rule

ZONES = ["Asia/Seoul", "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
EVERY_DAY = 0b1111111


def oracle(t1, t2, rules, tz_name, holidays, audiences):
    """Walk minute by minute (t1, t2 on whole minutes): which rule governs, and the fee."""
    tz = zoneinfo.ZoneInfo(tz_name)
    governing = []
    cursor = t1
    while cursor < t2:
        local = cursor.astimezone(tz)
        minute = local.hour * 60 + local.minute
        today = local.date()
        yesterday = today - timedelta(days=1)
        kind_today = 7 if today in holidays else today.weekday()
        kind_yesterday = 7 if yesterday in holidays else yesterday.weekday()
        best = None
        for rule in rules:
            if rule.audience not in audiences:
                continue
            if rule.end > rule.start:
                hit = rule.start <= minute < rule.end and rule.days >> kind_today & 1
            else:
                hit = (minute >= rule.start and rule.days >> kind_today & 1) or (
                    minute < rule.end and rule.days >> kind_yesterday & 1)
            if hit and (best is None or policy.RANK[rule.audience] > policy.RANK[best.audience]):
                best = rule
        governing.append(best)
        cursor += timedelta(minutes=1)
    allowed = all(rule is not None for rule in governing)
    fee = -(-sum(rule.fee_per_hour * 60 for rule in governing if rule is not None) // 3600)
    return allowed, fee, governing


minutes_of_day = st.integers(min_value=0, max_value=1439)


@st.composite
def rule_sets(draw):
    """Up to one rule per audience, so no set contradicts itself."""
    rules = []
    for index, audience in enumerate([ANYONE, MEMBERS, HOLDERS]):
        if draw(st.booleans()):
            rules.append(Rule(
                id=index + 1, name=f"r{index}", days=draw(st.integers(min_value=1, max_value=255)),
                start=draw(minutes_of_day), end=draw(minutes_of_day), audience=audience,
                fee_per_hour=draw(st.integers(min_value=0, max_value=5000)),
            ))
    return rules


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=rule_sets(), t1=instants, length=st.integers(min_value=1, max_value=60 * 30),
    tz_name=st.sampled_from(ZONES),
    audiences=st.sampled_from([{ANYONE}, {ANYONE, MEMBERS}, {ANYONE, MEMBERS, HOLDERS}]),
    holiday_offsets=st.lists(st.integers(min_value=-2, max_value=2), max_size=2),
)
def test_engine_matches_minute_oracle(rules, t1, length, tz_name, audiences, holiday_offsets):
    t2 = t1 + timedelta(minutes=length)
    local_day = t1.astimezone(zoneinfo.ZoneInfo(tz_name)).date()
    holidays = frozenset(local_day + timedelta(days=o) for o in holiday_offsets)
    decision = policy.decide(t1=t1, t2=t2, rules=rules, tz_name=tz_name, holidays=holidays, audiences=audiences,
                             check_notice=False)
    allowed, fee, governing = oracle(t1, t2, rules, tz_name, holidays, audiences)
    assert decision.allowed == allowed, decision.reasons
    assert decision.fee == fee
    # Each piece's rule is the oracle's rule for every minute in it.
    for piece in decision.pieces:
        first = int((piece.start - t1).total_seconds() // 60)
        last = int((piece.end - t1).total_seconds() // 60)
        assert set(governing[first:last]) == {piece.rule}


@settings(max_examples=200, deadline=None)
@given(rules=rule_sets(), at=instants, tz_name=st.sampled_from(ZONES))
def test_covering_agrees_with_oracle_at_an_instant(rules, at, tz_name):
    tz = zoneinfo.ZoneInfo(tz_name)
    found = set(policy.covering_rules(at, rules, tz, frozenset()))
    for rule in rules:
        allowed, _fee, _gov = oracle(at, at + timedelta(minutes=1), [rule], tz_name, frozenset(), {rule.audience})
        assert (rule in found) == allowed


DAY = Rule(id=1, name="Day", days=0b0111111, start=9 * 60, end=18 * 60, audience=ANYONE, fee_per_hour=1200,
           max_stay_minutes=240)
NIGHT = Rule(id=2, name="Night", days=255, start=18 * 60, end=9 * 60, audience=HOLDERS)
SUNDAY = Rule(id=3, name="Sunday", days=0b11000000, start=9 * 60, end=18 * 60, audience=HOLDERS)
DOKSAN = [DAY, NIGHT, SUNDAY]
SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")


def seoul(*args):
    return datetime(*args, tzinfo=SEOUL)


def test_night_window_crosses_midnight_in_the_zone_time_zone():
    # Friday 23:00 to Saturday 02:00 in Seoul is 14:00–17:00 UTC: night, holders only.
    t1, t2 = seoul(2026, 5, 8, 23, 0), seoul(2026, 5, 9, 2, 0)
    with translation.override("en"):
        visitor = policy.decide(t1=t1, t2=t2, rules=DOKSAN, tz_name="Asia/Seoul", holidays=frozenset(),
                                audiences={ANYONE})
    assert not visitor.allowed and visitor.codes == ["audience"]
    assert "permit holders" in visitor.reason and "Night" in visitor.reason
    with translation.override("ko"):
        korean = policy.decide(t1=t1, t2=t2, rules=DOKSAN, tz_name="Asia/Seoul", holidays=frozenset(),
                               audiences={ANYONE})
    assert "허가자만" in korean.reason
    holder = policy.decide(t1=t1, t2=t2, rules=DOKSAN, tz_name="Asia/Seoul", holidays=frozenset(),
                           audiences={ANYONE, MEMBERS, HOLDERS})
    assert holder.allowed and holder.fee == 0


def test_day_fee_max_stay_and_notice():
    t1 = seoul(2026, 5, 8, 10, 0)
    ok = policy.decide(t1=t1, t2=t1 + timedelta(minutes=90), rules=DOKSAN, tz_name="Asia/Seoul",
                       holidays=frozenset(), audiences={ANYONE})
    assert ok.allowed and ok.fee == 1800
    long = policy.decide(t1=t1, t2=t1 + timedelta(hours=5), rules=DOKSAN, tz_name="Asia/Seoul",
                         holidays=frozenset(), audiences={ANYONE})
    assert not long.allowed and long.codes == ["too_long"]
    noticed = Rule(id=9, name="Desk", days=EVERY_DAY, start=0, end=0, audience=ANYONE, notice_minutes=60)
    late = policy.decide(t1=t1, t2=t1 + timedelta(hours=1), rules=[noticed], tz_name="Asia/Seoul",
                         holidays=frozenset(), audiences={ANYONE}, now=t1 - timedelta(minutes=30))
    assert late.codes == ["notice"]


def test_public_holiday_turns_a_weekday_into_a_holiday():
    holiday = date(2026, 5, 5)  # Children's Day, a Tuesday
    t1 = seoul(2026, 5, 5, 10, 0)
    decision = policy.decide(t1=t1, t2=t1 + timedelta(hours=1), rules=DOKSAN, tz_name="Asia/Seoul",
                             holidays=frozenset({holiday}), audiences={ANYONE})
    assert not decision.allowed
    same_day_normally = policy.decide(t1=t1, t2=t1 + timedelta(hours=1), rules=DOKSAN, tz_name="Asia/Seoul",
                                      holidays=frozenset(), audiences={ANYONE})
    assert same_day_normally.allowed


def test_day_and_night_piece_fee_across_the_evening_edge():
    decision = policy.decide(t1=seoul(2026, 5, 8, 17, 0), t2=seoul(2026, 5, 8, 19, 0), rules=DOKSAN,
                             tz_name="Asia/Seoul", holidays=frozenset(), audiences={ANYONE, MEMBERS, HOLDERS})
    assert decision.allowed
    assert [p.rule.name for p in decision.pieces] == ["Day", "Night"]
    assert decision.fee == 1200


def test_dst_gap_is_handled_in_new_york():
    # 2026-03-08 02:00 does not exist in New York; a window 02:30–03:30 covers from the jump.
    rule = Rule(id=1, name="x", days=EVERY_DAY, start=150, end=210, audience=ANYONE)
    t1 = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST
    decision = policy.decide(t1=t1, t2=t1 + timedelta(hours=2), rules=[rule], tz_name="America/New_York",
                             holidays=frozenset(), audiences={ANYONE})
    covered = [(p.start, p.end) for p in decision.pieces if p.rule is not None]
    assert covered == [(datetime(2026, 3, 8, 7, 0, tzinfo=UTC), datetime(2026, 3, 8, 7, 30, tzinfo=UTC))]


def test_contradictions_same_audience_overlap_only():
    assert policy.contradictions(DOKSAN) == []
    clash = Rule(id=4, name="Evening", days=0b1, start=17 * 60, end=20 * 60, audience=HOLDERS)
    assert policy.contradictions([*DOKSAN, clash]) == [(NIGHT, clash)]
    other_audience = Rule(id=5, name="Evening members", days=0b1, start=17 * 60, end=20 * 60, audience=MEMBERS)
    assert policy.contradictions([*DOKSAN, other_audience]) == []
    # A night window spilling past midnight into a holiday clashes with an all-day holiday rule.
    holiday_all_day = Rule(id=6, name="Holiday", days=0b10000000, start=0, end=0, audience=HOLDERS)
    sunday_night = Rule(id=7, name="Sun night", days=0b1000000, start=22 * 60, end=2 * 60, audience=HOLDERS)
    assert policy.contradictions([holiday_all_day, sunday_night]) == [(holiday_all_day, sunday_night)]
