"""Demo data for sharing: the Doksan alley (Siheung-daero 126-gil) with 14 shared spaces — one
holder refused, so their space is private, and the leftover corner became space 15 — with
the day/night rules, a sensor per space with recent readings, a night violation and some
bookings; and a smart-work centre with 20 desks and 2 meeting rooms, members only, weekdays
08:00–20:00. Idempotent: a second run adds nothing."""

from __future__ import annotations

from datetime import date, time, timedelta

from django.db import transaction
from django.utils import timezone

from pumasi.sharing import policy, services
from pumasi.sharing.models import Booking, Device, Zone

ALLEY_SLUG = "siheung-126"
HUB_SLUG = "seoul-threads-hub"
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]
REFUSER = "holder07"
# Korean public holidays in 2026 (substitute holidays included).
HOLIDAYS_2026 = [
    (date(2026, 1, 1), "신정"), (date(2026, 2, 16), "설날 연휴"), (date(2026, 2, 17), "설날"),
    (date(2026, 2, 18), "설날 연휴"), (date(2026, 3, 1), "삼일절"), (date(2026, 3, 2), "대체공휴일"),
    (date(2026, 5, 5), "어린이날"), (date(2026, 5, 24), "부처님오신날"), (date(2026, 5, 25), "대체공휴일"),
    (date(2026, 6, 6), "현충일"), (date(2026, 8, 15), "광복절"), (date(2026, 8, 17), "대체공휴일"),
    (date(2026, 9, 24), "추석 연휴"), (date(2026, 9, 25), "추석"), (date(2026, 9, 26), "추석 연휴"),
    (date(2026, 10, 3), "개천절"), (date(2026, 10, 5), "대체공휴일"), (date(2026, 10, 9), "한글날"),
    (date(2026, 12, 25), "성탄절"),
]
ALLEY_LAT, ALLEY_LON = 37.469812, 126.896473


def seed(world) -> None:
    with transaction.atomic():
        _alley(world)
        _hub(world)


def _alley(world) -> None:
    if Zone.objects.filter(slug=ALLEY_SLUG).exists():
        return
    chief = world.people["chief"]
    zone = services.create_zone(
        actor=chief, community=world.doksan, name="시흥대로 126길 행복주차거리", slug=ALLEY_SLUG,
        address="서울 금천구 독산4동 시흥대로 126길", latitude=ALLEY_LAT, longitude=ALLEY_LON, allow_visitors=True)
    for day, name in HOLIDAYS_2026:
        services.add_holiday(actor=chief, zone=zone, day=day, name=name)
    services.add_window(actor=chief, zone=zone, name="낮 방문객 Day visitors", days=[*WEEKDAYS, "Sat"],
                        start_time=time(9), end_time=time(18), audience="anyone", fee_per_hour=1000,
                        max_stay_minutes=240)
    services.add_window(actor=chief, zone=zone, name="낮 주민 Day residents", days=[*WEEKDAYS, "Sat"],
                        start_time=time(9), end_time=time(18), audience="members", max_stay_minutes=600)
    services.add_window(actor=chief, zone=zone, name="밤 허가자 Night holders", days=255, start_time=time(18),
                        end_time=time(9), audience="holders")
    services.add_window(actor=chief, zone=zone, name="휴일 낮 허가자 Sunday & holidays holders",
                        days=["Sun", "Holidays"], start_time=time(9), end_time=time(18), audience="holders")
    spaces = []
    for index in range(1, 15):
        # Two rows along the alley, seven a side.
        row, col = divmod(index - 1, 7)
        space = services.add_resource(
            actor=chief, zone=zone, code=f"P{index:02d}", map_x=8 + col * 13, map_y=25 + row * 45,
            latitude=ALLEY_LAT + (index - 7) * 0.00004, longitude=ALLEY_LON + row * 0.00003)
        holder = world.people[f"holder{index:02d}"]
        today = timezone.localdate()
        space = services.assign_holder(actor=chief, resource=space, holder=holder, term_start=today,
                                       term_end=today + timedelta(days=90 if index != 3 else 10))
        spaces.append(space)
    corner = services.add_resource(actor=chief, zone=zone, code="P15", name="모퉁이 Corner", map_x=95, map_y=50,
                                   latitude=ALLEY_LAT + 0.0003, longitude=ALLEY_LON + 0.00002)
    spaces.append(corner)
    refuser = world.people[REFUSER]
    services.set_sharing(actor=refuser, resource=spaces[6], shares=False)
    now = timezone.now()
    tz = policy.tz_of(zone.time_zone)
    last_night = (now.astimezone(tz) - timedelta(hours=8)).replace(hour=23, minute=10, second=0, microsecond=0)
    if last_night > now - timedelta(hours=8):
        last_night -= timedelta(days=1)
    for index, space in enumerate(spaces, start=1):
        device, _secret = services.register_device(actor=chief, zone=zone, external_id=f"doksan-ps-{index:02d}",
                                                   resource=space, interval_seconds=300)
        seq = 1
        if index == 15:
            # An outside car in the corner overnight: a night violation the committee sees.
            services.ingest(via="http", reading=services.IncomingReading(device.external_id, True, last_night,
                                                                         battery=88, fcnt=seq))
            seq += 1
            services.ingest(via="http", reading=services.IncomingReading(
                device.external_id, False, last_night + timedelta(hours=7), battery=88, fcnt=seq))
            seq += 1
        occupied = index % 3 != 0
        battery = 12 if index == 5 else 60 + index * 2
        services.ingest(via="http", reading=services.IncomingReading(
            device.external_id, occupied, now - timedelta(minutes=20 - index), battery=battery, fcnt=seq))
    # Space 9's sensor has gone quiet: the board shows it as unknown.
    Device.objects.filter(external_id="doksan-ps-09").update(last_seen_at=now - timedelta(hours=2))
    start = (now.astimezone(tz) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    while start.weekday() == 6 or start.date() in {d for d, _n in HOLIDAYS_2026}:
        start += timedelta(days=1)
    services.create_booking(actor=None, resource=spaces[2], starts_at=start, ends_at=start + timedelta(hours=2),
                            visitor_name="방문객 김", plate="12가3456")
    services.create_booking(actor=world.people["holder02"],
                            resource=spaces[10], starts_at=start + timedelta(hours=9),
                            ends_at=start + timedelta(hours=20))
    visitor_done = services.create_booking(actor=None, resource=spaces[11], starts_at=start + timedelta(hours=1),
                                           ends_at=start + timedelta(hours=3), visitor_name="방문객 이",
                                           visitor_phone="010-2345-6789")
    Booking.objects.filter(pk=visitor_done.pk).update(status="cancelled")


def _hub(world) -> None:
    if Zone.objects.filter(slug=HUB_SLUG).exists():
        return
    owner = world.people["maker"]
    zone = services.create_zone(actor=owner, community=world.maker, name="Seoul Threads 스마트워크센터",
                                slug=HUB_SLUG, kind="workspace", address="서울 성동구 성수이로 (demo)",
                                latitude=37.5446, longitude=127.0557, allow_visitors=False, public_board=False)
    services.add_window(actor=owner, zone=zone, name="Desks: members, weekdays", days=WEEKDAYS, start_time=time(8),
                        end_time=time(20), audience="members", max_stay_minutes=720, resource_kind="desk")
    services.add_window(actor=owner, zone=zone, name="Rooms: members, weekdays", days=WEEKDAYS, start_time=time(8),
                        end_time=time(20), audience="members", max_stay_minutes=180, notice_minutes=30,
                        resource_kind="room")
    for index in range(1, 21):
        row, col = divmod(index - 1, 5)
        services.add_resource(actor=owner, zone=zone, code=f"D{index:02d}", kind="desk", map_x=10 + col * 18,
                              map_y=15 + row * 20)
    for index, name in enumerate(["회의실 A", "회의실 B"], start=1):
        services.add_resource(actor=owner, zone=zone, code=f"R{index}", name=name, kind="room", map_x=95,
                              map_y=25 + 50 * (index - 1))
