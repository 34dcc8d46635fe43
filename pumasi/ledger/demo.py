"""Demo ledger for Doksan 4-dong: accounts, three months of parking-fee income split by a public
rule, a mutual-aid pool, and the oldest month settled. Idempotent: a second run adds nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pumasi.ledger import services
from pumasi.ledger.models import Pool, PoolMember, Settlement, SplitRule

RULE_NAME = "주차 요금 배분 (Parking fees)"
POOL_NAME = "주민 상조회 (Neighbours' mutual aid)"


def _months_back(today: date, count: int) -> list[date]:
    first = today.replace(day=1)
    months = []
    for _i in range(count):
        first = (first - timedelta(days=1)).replace(day=1)
        months.append(first)
    return list(reversed(months))


def seed(world) -> None:
    community = world.doksan
    chief = world.people["chief"]
    zone = ZoneInfo(community.time_zone)
    for key in ("cash", "income", "platform", "expenses"):
        services.standard_account(community=community, key=key)
    holders = [world.people[f"holder{i:02d}"] for i in range(1, 15)]
    sharers = [services.member_account(community=community, user=h) for h in holders[:4]]
    income = services.standard_account(community=community, key="income")
    rule = SplitRule.objects.filter(community=community, name=RULE_NAME).first()
    if rule is None:
        # Fees keep the sensors and the board running; the holders who share their space by day
        # get a part; no company takes a cut (seed 000).
        rule = services.create_split_rule(
            actor=chief, community=community, name=RULE_NAME, note="센서·전광판 유지비 우선, 공유 참여 주민에게 배분",
            shares=[{"account": income, "basis_points": 6000}]
            + [{"account": account, "basis_points": 1000} for account in sharers],
        )
    months = _months_back(date.today(), 3)
    for month in months:
        for index in range(12):
            moment = datetime(month.year, month.month, 2 + index * 2, 10 + index % 8, 15, tzinfo=zone)
            services.split_income(
                community=community, actor=None, idempotency_key=f"demo:parking:{month:%Y-%m}:{index}",
                memo=f"주차 요금 {month:%m}월 {moment.day}일 (방문 차량 {2 + index % 3}시간)", rule=rule,
                amount=1000 * (2 + index % 3), occurred_at=moment, kind="split",
            )
    pool = Pool.objects.filter(community=community, name=POOL_NAME).first()
    if pool is None:
        pool = services.create_pool(actor=chief, community=community, name=POOL_NAME, contribution_amount=10000,
                                    claim_rule="partial", year_end_rule="refund")
    for holder in holders[:6]:
        if not PoolMember.objects.filter(pool=pool, user=holder).exists():
            services.join_pool(actor=holder, pool=pool)
        for month in months:
            services.contribute(actor=holder, pool=pool, month=f"{month:%Y-%m}")
    first = months[0]
    end = (first + timedelta(days=32)).replace(day=1)
    if not Settlement.objects.filter(community=community, period_start=first, period_end=end, status="completed").exists():
        services.settle(actor=chief, community=community, period_start=first, period_end=end)
