"""Web Push on the notifications page, on a 360 px phone: the control shows where the browser has
the Push API and stays hidden where it has not, the service worker registers for the whole site
without console errors, and axe finds nothing serious. Headless chromium reaches no real push
service, so subscribing itself is tested against a loopback push service in
pumasi/platform/tests/test_webpush.py."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from pumasi.platform import notifications
from pumasi.tests.browser.conftest import axe_violations, horizontal_overflow
from pumasi.tests.factories import UserFactory

pytestmark = pytest.mark.browser


# The test's live server is plain WSGI: it has no event stream (pages open one for the live unread
# count) and no favicon. Those two 404s are the rig's, not the page's.
RIG_404 = ("/events/stream", "/favicon.ico")


def _page_with_errors(context):
    page = context.new_page()
    errors: list[str] = []

    def console(message):
        url = (message.location or {}).get("url", "")
        if message.type == "error" and not url.endswith(RIG_404):
            errors.append(f"{message.text} ({url})")

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def test_push_control_renders_and_the_service_worker_registers(new_context, site):
    person = UserFactory(display_name="김하늘", language="ko")
    notifications.notify(recipient=person, kind="company_message", title="주문하신 재킷이 발송되었습니다")
    page, errors = _page_with_errors(new_context("ko", user=person))
    page.goto("/notifications/")
    expect(page.locator("[data-push-control]")).to_be_visible()
    expect(page.get_by_role("button", name="이 기기에서 푸시 알림 켜기")).to_be_visible()
    expect(page.get_by_role("button", name="이 기기에서 푸시 알림 끄기")).to_be_hidden()
    expect(page.get_by_role("checkbox", name="푸시 · company_message")).to_be_checked()
    registration = page.evaluate(
        "async () => { const r = await navigator.serviceWorker.ready;"
        " return {scope: r.scope, script: (r.active || r.installing || r.waiting).scriptURL}; }")
    assert registration == {"scope": f"{site}/", "script": f"{site}/sw.js"}
    assert page.evaluate("() => typeof PushManager") == "function"
    assert axe_violations(page) == []
    assert horizontal_overflow(page) == 0
    assert errors == []


def test_push_control_stays_hidden_without_the_push_api(new_context):
    person = UserFactory(display_name="Park Jiho", language="ko")
    context = new_context("ko", user=person)
    context.add_init_script("delete window.PushManager;")
    page, errors = _page_with_errors(context)
    page.goto("/notifications/")
    expect(page.locator("h1")).to_contain_text("알림")
    expect(page.locator("[data-push-control]")).to_be_hidden()
    assert axe_violations(page) == []
    assert errors == []
