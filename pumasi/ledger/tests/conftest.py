"""The ledger tests read English messages; pages follow each person's own language."""

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield
