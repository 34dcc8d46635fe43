"""`pumasi mqtt`: subscribe to sensor readings on the MQTT broker at PUMASI_MQTT_URL."""

from __future__ import annotations

import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pumasi.sharing import mqtt


class Command(BaseCommand):
    help = "Subscribe to <prefix>/<device>/up on the broker at PUMASI_MQTT_URL and apply sensor readings."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=None, help="broker URL (default: PUMASI_MQTT_URL)")
        parser.add_argument("--prefix", default=mqtt.DEFAULT_PREFIX, help="topic prefix (default %(default)s)")
        parser.add_argument("--batch", type=int, default=1000, help="readings per transaction at most")
        parser.add_argument("--qos", type=int, choices=[0, 1], default=0, help="subscription QoS (default 0)")

    def handle(self, *args, **options):
        url = options["url"] or settings.MQTT_URL
        if not url:
            raise CommandError("Set PUMASI_MQTT_URL (e.g. mqtt://127.0.0.1:1883) or pass --url.")
        self.stdout.write(f"pumasi mqtt: subscribed to {options['prefix']}/+/up on {url}")
        stop = threading.Event()
        # The database work holds the GIL for long stretches; switching threads more often keeps
        # paho's network thread draining the socket, so the broker never has to queue (or drop) for us.
        sys.setswitchinterval(0.0005)
        try:
            totals = mqtt.run(url, prefix=options["prefix"], stop=stop, batch_size=options["batch"],
                              qos=options["qos"])
        except KeyboardInterrupt:
            stop.set()
            return
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot reach the broker at {url}: {exc}") from exc
        self.stdout.write(f"done: {totals}")
