"""The entrance board in Debian chromium against a real `pumasi run` (the board stream is served
natively by the ASGI router, so pytest-django's live server would not do): signed out, a reading
posted to the real endpoint changes the board within 2 s, and the last space filling shows FULL / 만차."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from pumasi.sharing.tests.conftest import Alley
from pumasi.sharing.tests.test_stream import NO_REDIS, post_reading

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_board_is_pushed_each_reading_and_shows_full_when_the_last_space_fills(
        browser, pumasi_server, community, member_of):
    alley = Alley(community, member_of, slug="browser-alley")
    server = pumasi_server(NO_REDIS)
    post_reading(server.url, alley, "A1", True, 1)
    post_reading(server.url, alley, "A2", False, 1)
    post_reading(server.url, alley, "A3", False, 1)
    context = browser.new_context(locale="ko-KR", viewport={"width": 1280, "height": 720}, base_url=server.url)
    try:
        page = context.new_page()
        page.goto(f"/z/{alley.zone.slug}/board")
        board = page.locator("#board")
        expect(board).to_have_attribute("data-live", "stream")  # EventSource, not the long poll
        expect(page.get_by_test_id("state")).to_contain_text("빈자리 2")

        started = time.monotonic()
        post_reading(server.url, alley, "A2", True, 2)
        expect(page.locator('[data-code="A2"]')).to_have_attribute("data-status", "occupied", timeout=2000)
        expect(page.get_by_test_id("state")).to_contain_text("빈자리 1", timeout=2000)
        assert time.monotonic() - started < 2.0

        started = time.monotonic()
        post_reading(server.url, alley, "A3", True, 2)
        state = page.get_by_test_id("state")
        expect(state).to_contain_text("만차", timeout=2000)
        expect(state).to_contain_text("FULL", timeout=2000)
        assert time.monotonic() - started < 2.0
        expect(state).to_have_class("state full")

        # A car leaves: the board opens again, still pushed.
        post_reading(server.url, alley, "A1", False, 2)
        expect(page.get_by_test_id("state")).to_contain_text("빈자리 1", timeout=2000)
    finally:
        context.close()


def test_a_browser_without_eventsource_falls_back_to_the_long_poll(browser, pumasi_server, community, member_of):
    alley = Alley(community, member_of, slug="tv-alley")
    server = pumasi_server(NO_REDIS)
    for code in ("A1", "A2", "A3"):
        post_reading(server.url, alley, code, False, 1)
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 720}, base_url=server.url)
    try:
        context.add_init_script("delete window.EventSource;")  # a cheap TV browser
        page = context.new_page()
        page.goto(f"/z/{alley.zone.slug}/board")
        expect(page.locator("#board")).to_have_attribute("data-live", "poll")
        expect(page.get_by_test_id("state")).to_contain_text("빈자리 3")
        post_reading(server.url, alley, "A2", True, 2)
        expect(page.locator('[data-code="A2"]')).to_have_attribute("data-status", "occupied", timeout=2000)
    finally:
        context.close()
