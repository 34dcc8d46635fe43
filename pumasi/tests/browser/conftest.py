"""Browser-test rig: one Debian chromium per session, a fresh context per test, axe-core on demand.

The site is served by pytest-django's `live_server` (a thread in this process on the test database):
it starts once per session, so the suite stays fast, and tests can prepare and check rows with the
ORM directly. `pumasi run` itself is exercised by the server tests through the `pumasi_server` fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client

# Playwright's sync API keeps an event loop running in this thread; Django would otherwise refuse
# ORM calls from the test body ("You cannot call this from an async context").
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("PUMASI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 360, "height": 740}
LOCALES = {"ko": "ko-KR", "en": "en-US"}


_SHARED: dict = {}


@pytest.fixture(scope="session")
def browser(request):
    """One chromium for the whole run. Apps' test packages import this fixture into their own conftest;
    pytest then holds one definition per package, so the browser itself is kept here, started once
    (two Playwright sync instances cannot live in one thread) and closed when the run ends."""
    if "browser" not in _SHARED:
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test-tools)")
        playwright = sync_playwright().start()
        _SHARED["browser"] = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

        def stop():
            _SHARED.pop("browser").close()
            playwright.stop()

        request.config.add_cleanup(stop)
    return _SHARED["browser"]


@pytest.fixture
def site(live_server, transactional_db, settings, tmp_path):
    """The live server's base URL. Uploaded files go to a per-test directory, not var/media."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return live_server.url


@pytest.fixture
def new_context(browser, site):
    """new_context(language="ko", user=None, viewport=PHONE) -> a browser context in that locale,
    signed in as `user` when given. Every context is closed after the test."""
    contexts = []

    def make(language: str = "ko", user=None, viewport=PHONE):
        context = browser.new_context(locale=LOCALES[language], viewport=viewport, base_url=site)
        context.set_default_timeout(10_000)
        if user is not None:
            client = Client()
            client.force_login(user)
            context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site}])
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    """A page in a Korean, signed-out context."""
    return new_context("ko").new_page()


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """Run axe-core on the page as it is now; return the violations of the given impacts."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `bash scripts/ensure-test-tools.sh` (npm ci)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in impacts
    ]


def horizontal_overflow(page) -> int:
    """How many pixels the document is wider than the viewport (0 when nothing scrolls sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
