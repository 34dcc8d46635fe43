"""Settings for benchmark servers only: pumasi's settings with a URLconf that adds a bare view."""

from pumasi.settings import *  # noqa: F403

ROOT_URLCONF = "bench.hello_urls"
