"""Fixtures for co-creation tests: a board with ideas, a survey, a workspace."""

from __future__ import annotations

import pytest

from pumasi.cocreation import services


@pytest.fixture
def board(community):
    return services.create_board(actor=community.organiser, community=community, title="주차 개선", question="골목 주차를 어떻게 바꿀까요?",
                                 categories=["주차", "안전"])


@pytest.fixture
def workspace(community):
    return services.create_workspace(actor=community.organiser, community=community, title="New jacket",
                                     call_text="Looking for pattern makers")


# The shared browser rig (chromium, live server, signed-in contexts) for test_browser.py.
from pumasi.tests.browser.conftest import browser, new_context, site  # noqa: E402,F401
