"""Fixtures for the sharing tests: a small Doksan-like alley with the day/night rules."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time

import pytest

from pumasi.sharing import services

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")


def seoul(*args) -> datetime:
    return datetime(*args, tzinfo=SEOUL)


class Alley:
    """zone, spaces A1..A3 (A1 held by `holder`), committee `chief`, a member, devices per space."""

    def __init__(self, community, member_of, slug="alley"):
        self.community = community
        self.chief = community.organiser
        self.holder = member_of(community, "member", display_name="Holder")
        self.member = member_of(community, "member", display_name="Member")
        self.zone = services.create_zone(actor=self.chief, community=community, name="Alley", slug=slug,
                                         allow_visitors=True, latitude=37.4698, longitude=126.8965)
        self.spaces = [services.add_resource(actor=self.chief, zone=self.zone, code=f"A{i}", map_x=10 * i, map_y=20)
                       for i in range(1, 4)]
        self.spaces[0] = services.assign_holder(actor=self.chief, resource=self.spaces[0], holder=self.holder)
        services.add_window(actor=self.chief, zone=self.zone, name="Day", days=["Mon", "Tue", "Wed", "Thu", "Fri",
                            "Sat"], start_time=time(9), end_time=time(18), audience="anyone", fee_per_hour=1200,
                            max_stay_minutes=240)
        services.add_window(actor=self.chief, zone=self.zone, name="Night", days=255, start_time=time(18),
                            end_time=time(9), audience="holders")
        services.add_window(actor=self.chief, zone=self.zone, name="Sunday", days=["Sun", "Holidays"],
                            start_time=time(9), end_time=time(18), audience="holders")
        self.devices = {}
        self.secrets = {}
        for space in self.spaces:
            device, secret = services.register_device(actor=self.chief, zone=self.zone,
                                                      external_id=f"{slug}-{space.code.lower()}", resource=space)
            self.devices[space.code] = device
            self.secrets[space.code] = secret


@pytest.fixture
def alley(community, member_of):
    return Alley(community, member_of)


# The shared browser rig (one Debian chromium per run) for test_browser.py.
from pumasi.tests.browser.conftest import browser  # noqa: E402,F401
