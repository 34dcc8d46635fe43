"""`pumasi simulate parking --zone SLUG --days N --speed X --via http|mqtt [--forever]`: cars come and
go in a zone and its sensors send real signed readings (pumasi/sharing/simulate.py)."""

from __future__ import annotations

import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pumasi.sharing import mqtt
from pumasi.sharing.models import Zone
from pumasi.sharing.simulate import HttpTransport, MqttTransport, ParkingSimulation


def _default_url() -> str:
    host = os.environ.get("PUMASI_HOST", "127.0.0.1")
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{os.environ.get('PUMASI_PORT', '8000')}"


class Command(BaseCommand):
    help = "Simulate a parking zone: arrivals and departures sent as real signed sensor readings."

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["parking"])
        parser.add_argument("--zone", required=True, help="the zone's address (slug)")
        parser.add_argument("--days", type=float, default=1.0, help="simulated days to run (default 1)")
        parser.add_argument("--forever", action="store_true", help="run until stopped (the demo)")
        parser.add_argument("--speed", type=float, default=60.0,
                            help="simulated seconds per real second (default 60: a day in 24 minutes)")
        parser.add_argument("--via", choices=["http", "mqtt"], default="http")
        parser.add_argument("--url", default=None, help="the server for --via http (default http://PUMASI_HOST:PUMASI_PORT)")
        parser.add_argument("--broker", default=None, help="the broker for --via mqtt (default PUMASI_MQTT_URL)")
        parser.add_argument("--prefix", default=mqtt.DEFAULT_PREFIX, help="MQTT topic prefix")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable run")

    def handle(self, *args, **options):
        zone = Zone.objects.select_related("community").filter(slug=options["zone"]).first()
        if zone is None:
            raise CommandError(f"No zone '{options['zone']}'.")
        if options["speed"] <= 0:
            raise CommandError("--speed must be above 0.")
        if options["via"] == "mqtt":
            broker = options["broker"] or settings.MQTT_URL
            if not broker:
                raise CommandError("Set PUMASI_MQTT_URL or pass --broker for --via mqtt.")
            try:
                transport = MqttTransport(broker, options["prefix"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot reach the broker at {broker}: {exc}") from exc
            target = broker
        else:
            target = options["url"] or _default_url()
            transport = HttpTransport(target)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        simulation = ParkingSimulation(zone, speed=options["speed"], transport=transport, seed=options["seed"],
                                       log=lambda text: self.stdout.write(text))
        self.stdout.write(f"pumasi simulate: {len(simulation.spaces)} sensors of {zone.slug} via "
                          f"{options['via']} ({target}), speed x{options['speed']:g}")
        try:
            counts = simulation.run(days=None if options["forever"] else options["days"], stop=stop)
        except KeyboardInterrupt:
            counts = simulation.counts
        except OSError as exc:
            raise CommandError(f"Cannot reach {target}: {exc}") from exc
        finally:
            transport.close()
        self.stdout.write(f"done: {counts}")
