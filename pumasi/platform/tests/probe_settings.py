"""Settings for the job tests' subprocesses: pumasi's, plus the probe app."""

from pumasi.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "pumasi.platform.tests.probe.ProbeConfig"]  # noqa: F405
