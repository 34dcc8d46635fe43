"""Demo people and communities: the Doksan 4-dong residents' committee (scenario 1) and a
clothing maker's co-creation community (scenario 2). Later capabilities add their own demo
data in `pumasi/<app>/demo.py`, each given the result of this one."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction

from pumasi.communities.models import Community, Membership, Role
from pumasi.communities.services import create_community
from pumasi.platform.services import record_audit

DEMO_PASSWORD = "pumasi-demo-2026"

HOLDER_NAMES = [
    "김민준", "이서연", "박도윤", "최지우", "정하준", "강서윤", "조시우", "윤지호",
    "장수아", "임예준", "한지민", "오은우", "서하은", "신유준",
]


@dataclass
class DemoWorld:
    doksan: Community
    maker: Community
    people: dict[str, object] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (email, who, community)


def _person(email: str, name: str, language: str = "ko"):
    user_model = get_user_model()
    user = user_model.objects.filter(email=email).first()
    if user is None:
        user = user_model.objects.create_user(email=email, password=DEMO_PASSWORD, display_name=name, language=language)
        from allauth.account.models import EmailAddress

        EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    return user


def _ensure_member(community: Community, user, role: str) -> None:
    membership, created = Membership.objects.get_or_create(community=community, user=user, defaults={"role": role})
    if created:
        record_audit(actor=None, action="membership.seeded", obj=membership, community=community, changes={"role": role})


@transaction.atomic
def seed() -> DemoWorld:
    chief = _person("chief@doksan.example", "동장 박정호")
    doksan = Community.objects.filter(slug="doksan4").first() or create_community(
        actor=chief, name="독산4동 행복주차거리 주민위원회", slug="doksan4", kind="residents",
        description="시흥대로 126길 거주자우선주차 14면을 함께 쓰는 주민위원회 (Happy Parking Street, Doksan 4-dong).",
    )
    world_people: dict[str, object] = {"chief": chief}
    logins = [("chief@doksan.example", "dong chief, organiser", "doksan4")]
    committee = [
        ("official@geumcheon.example", "구청 주무관 이수진", "committee"),
        ("corp@facilities.example", "시설관리공단 최민호", "committee"),
        ("sensor@sensorco.example", "센서업체 정다은", "observer"),
        ("activist@doksan.example", "활동가 한별", "committee"),
    ]
    for email, name, role in committee:
        user = _person(email, name)
        _ensure_member(doksan, user, role)
        world_people[email.split("@")[0]] = user
    logins.append(("official@geumcheon.example", "district official, committee", "doksan4"))
    for index, name in enumerate(HOLDER_NAMES, start=1):
        user = _person(f"holder{index:02d}@doksan.example", name)
        _ensure_member(doksan, user, Role.MEMBER)
        world_people[f"holder{index:02d}"] = user
    logins.append(("holder01@doksan.example", "permit holder 1 of 14, member", "doksan4"))
    for index in range(1, 4):
        user = _person(f"visitor{index}@example.com", f"방문자 {index}")
        world_people[f"visitor{index}"] = user
    logins.append(("visitor1@example.com", "visitor, no community", "-"))

    owner = _person("maker@clothing.example", "Mina Park (Seoul Threads)", "en")
    maker = Community.objects.filter(slug="seoul-threads").first() or create_community(
        actor=owner, name="Seoul Threads 공동디자인 커뮤니티", slug="seoul-threads", kind="company",
        description="A clothing maker invites its customers to design; chosen designs are made, sold and paid out.",
        open_join=True,
    )
    world_people["maker"] = owner
    logins.append(("maker@clothing.example", "clothing maker, organiser", "seoul-threads"))
    production = _person("production@clothing.example", "생산관리 오세훈")
    _ensure_member(maker, production, Role.ORGANISER)
    world_people["production"] = production
    for index, name in enumerate(["디자이너 윤아", "Designer Leo", "디자이너 하늘"], start=1):
        user = _person(f"designer{index}@example.com", name, "en" if index == 2 else "ko")
        _ensure_member(maker, user, Role.MEMBER)
        world_people[f"designer{index}"] = user
    logins.append(("designer1@example.com", "designer, member", "seoul-threads"))
    for index in range(1, 6):
        user = _person(f"buyer{index}@example.com", f"구매자 {index}")
        _ensure_member(maker, user, Role.MEMBER)
        world_people[f"buyer{index}"] = user
    logins.append(("buyer1@example.com", "buyer, member", "seoul-threads"))
    return DemoWorld(doksan=doksan, maker=maker, people=world_people, logins=logins)
