"""Event delivery after commit: one delivery (job and live announcement) per transaction, events of
rolled-back savepoints and transactions never delivered, and nothing lost after a rollback."""

from __future__ import annotations

import pytest
from django.db import transaction

from pumasi.core import events
from pumasi.platform import tasks
from pumasi.platform.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    def __init__(self):
        self.handled: list[str] = []
        self.announced: list[int] = []
        self.jobs: list[list[str]] = []

    def handler(self, event):
        self.handled.append(event.payload["n"])

    def job(self, event):
        if event.name == "test.batched":
            self.jobs[-1].append(event.payload["n"])


@pytest.fixture
def recorder():
    from huey.contrib.djhuey import HUEY
    from huey.signals import SIGNAL_EXECUTING

    rec = Recorder()
    events.on_event("test.batched")(rec.handler)
    events.add_local_listener(rec.announced.append)
    tasks.on_event_job("test.batched")(rec.job)

    def executing(signal, task):  # Huey's own hook: each job run opens a new list
        if task.name.endswith("deliver_events_job"):
            rec.jobs.append([])

    HUEY.signal(SIGNAL_EXECUTING)(executing)
    yield rec
    HUEY.disconnect_signal(executing, SIGNAL_EXECUTING)
    events.remove_local_listener(rec.announced.append)
    events._handlers["test.batched"].remove(rec.handler)
    tasks.JOB_HANDLERS["test.batched"].remove(rec.job)


def _publish(n: str):
    return events.publish_event(name="test.batched", payload={"n": n})


def test_a_transactions_events_are_delivered_together_after_commit(recorder):
    with transaction.atomic():
        _publish("a")
        events.publish_events([{"name": "test.batched", "payload": {"n": "b"}},
                               {"name": "test.batched", "payload": {"n": "c"}}])
        assert recorder.handled == []  # nothing before the commit
    assert recorder.handled == ["a", "b", "c"]
    assert recorder.jobs == [["a", "b", "c"]]
    assert recorder.announced == [Event.objects.order_by("-pk").first().pk]


def test_rolled_back_events_are_never_delivered_and_later_ones_are(recorder):
    with transaction.atomic():
        _publish("kept")
        try:
            with transaction.atomic():
                _publish("savepoint")
                raise RuntimeError
        except RuntimeError:
            pass
        _publish("after")
    assert recorder.handled == ["kept", "after"]
    try:
        with transaction.atomic():
            _publish("rolled back")
            raise RuntimeError
    except RuntimeError:
        pass
    with transaction.atomic():
        _publish("next")
    _publish("autocommit")
    assert recorder.handled == ["kept", "after", "next", "autocommit"]
    assert sorted(Event.objects.filter(name="test.batched").values_list("payload__n", flat=True)) == [
        "after", "autocommit", "kept", "next"]
