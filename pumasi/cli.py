"""The `pumasi` command: run (production server), demo (seed), worker (jobs), manage (any
Django command). Any other word is taken as a Django management command, so
`pumasi ledger verify` runs the `ledger` command with `verify`."""

from __future__ import annotations

import argparse
import os
import sys


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pumasi.settings")
    import django

    django.setup()


def _manage(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pumasi.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["pumasi", *argv])
    return 0


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pumasi run", description="Serve pumasi with granian (production grade).")
    parser.add_argument("--host", default=os.environ.get("PUMASI_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PUMASI_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("PUMASI_WORKERS", "1")),
                        help="worker processes (default PUMASI_WORKERS or 1)")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    from granian.constants import Interfaces
    from granian.server import Server

    from pumasi import config

    static_root = config.var_dir() / "static"
    static_root.mkdir(parents=True, exist_ok=True)
    print(f"pumasi serving on http://{args.host}:{args.port}/ ({args.workers} worker(s))", flush=True)
    Server(
        "pumasi.asgi:application",
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        log_access=args.access_log,
        static_path_route=["/static"],
        static_path_mount=[static_root],
        respawn_failed_workers=True,
    ).serve()
    return 0


def _worker(argv: list[str]) -> int:
    return _manage(["run_huey", *argv])


def _demo(argv: list[str]) -> int:
    return _manage(["seed_demo", *argv])


COMMANDS = {"run": _run, "worker": _worker, "demo": _demo, "manage": _manage}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        print("usage: pumasi {run|demo|worker|manage …|<django command> …}")
        return 0
    command, rest = argv[0], argv[1:]
    if command in COMMANDS:
        return COMMANDS[command](rest) or 0
    return _manage([command, *rest])


if __name__ == "__main__":
    sys.exit(main())
