"""`python -m bench` (`make bench`): run every benchmark module in bench/ and print one table.

A benchmark that fails is reported with its traceback and the others still run; the exit
status is non-zero when any failed.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

# Helper modules of the benchmarks, not benchmarks themselves.
HELPERS = {"settings", "hello_urls", "django_asgi"}
FIRST = ["serving", "ledger"]


def _modules() -> list[str]:
    found = {info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)])}
    names = {name for name in found if not name.startswith("_") and name not in HELPERS}
    return [name for name in FIRST if name in names] + sorted(names - set(FIRST))


def _normalise(result) -> list[dict]:
    rows = []
    for item in result or ():
        if isinstance(item, dict):
            rows.append(item)
        elif isinstance(item, list | tuple):
            keys = ("name", "value", "unit", "ratio", "note")
            rows.append(dict(zip(keys, item, strict=False)))
        else:
            rows.append({"name": str(item)})
    return rows


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    return "" if value is None else str(value)


def _print_table(table: list[tuple[str, dict]]) -> None:
    lines = [("benchmark", "measure", "value", "unit", "ratio", "note")]
    for bench, row in table:
        ratio = row.get("ratio")
        ratio_text = "" if ratio is None else f"{ratio:.2f}" + (f" of {row['of']}" if row.get("of") else "")
        lines.append((bench, str(row.get("name", "")), _number(row.get("value")), str(row.get("unit") or ""),
                      ratio_text, str(row.get("note") or "")))
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    for index, line in enumerate(lines):
        cells = [cell.rjust(widths[i]) if i == 2 else cell.ljust(widths[i]) for i, cell in enumerate(line)]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main() -> int:
    table: list[tuple[str, dict]] = []
    failed: list[str] = []
    for name in _modules():
        started = time.monotonic()
        print(f"== bench.{name} …", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            run = getattr(module, "run", None)
            if run is None:
                continue
            rows = _normalise(run())
        except Exception:
            failed.append(name)
            traceback.print_exc()
            table.append((name, {"name": "FAILED (traceback above)"}))
            continue
        table.extend((name, row) for row in rows)
        print(f"== bench.{name} done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print()
    _print_table(table)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
