"""A test-only Django app for subprocesses: a job-side event handler that leaves evidence.

Servers and workers started by the job tests run with `probe_settings`, which installs this
app; its handler appends "<event id> <name>" to the file named by PUMASI_PROBE_FILE.
"""

import os
from pathlib import Path

from django.apps import AppConfig


def record(event) -> None:
    with Path(os.environ["PUMASI_PROBE_FILE"]).open("a") as handle:
        handle.write(f"{event.pk} {event.name} pid={os.getpid()}\n")


class ProbeConfig(AppConfig):
    name = "pumasi.platform.tests.probe"
    label = "platform_probe"

    def ready(self) -> None:
        from pumasi.platform.tasks import on_event_job

        on_event_job("communities.invitation_created")(record)
