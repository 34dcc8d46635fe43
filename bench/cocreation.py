"""Benchmark for co-creation search: latency of Korean queries over N ideas, through the
trigram index (FTS5 trigram on SQLite, pg_trgm GIN on PostgreSQL) and through a plain LIKE
scan of the same rows, in the same run. `run()` is imported by the bench runner.

`python -m bench.cocreation` runs it alone. Like bench.ledger, the measuring happens in a child
process against a throwaway SQLite database under var/bench/ (migrated first), never the demo one.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench"

N_IDEAS = int(os.environ.get("PUMASI_BENCH_IDEAS", "100000"))
QUERIES = ["주차공간", "가로등 설치", "쓰레기 분리", "주차", "드문검색어"]  # the last matches nothing: a full scan for LIKE
WORDS = ["주차공간", "가로등", "쓰레기", "분리수거", "놀이터", "공원", "버스정류장", "횡단보도", "자전거", "도서관", "벤치",
         "설치", "늘려주세요", "고쳐주세요", "밝게", "안전하게", "깨끗하게", "골목", "밤에", "아이들"]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _build(n: int):
    from django.db import connection, transaction

    from pumasi.cocreation import search
    from pumasi.cocreation.models import SearchDocument
    from pumasi.communities.models import Community

    community = Community.objects.create(name="bench cocreation", slug=f"bench-coc-{os.getpid()}", kind="residents")
    rng = random.Random(7)
    batch = 5000
    with transaction.atomic():
        for start in range(0, n, batch):
            docs = []
            for i in range(start, min(n, start + batch)):
                title = " ".join(rng.sample(WORDS, 3))
                body = " ".join(rng.choices(WORDS, k=25))
                docs.append(SearchDocument(kind="idea", object_id=10_000_000 + i, community=community, url="/", title=title, body=body))
            created = SearchDocument.objects.bulk_create(docs)
            if connection.vendor == "sqlite":
                with connection.cursor() as cursor:
                    cursor.executemany(f"INSERT INTO {search.FTS_TABLE}(rowid, title, body) VALUES (%s, %s, %s)",
                                       [(d.pk, d.title, d.body) for d in created])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE cocreation_searchdocument")
    return community


def _drop(community) -> None:
    from django.db import connection, transaction

    from pumasi.cocreation import search
    from pumasi.cocreation.models import SearchDocument

    with transaction.atomic():
        if connection.vendor == "sqlite":
            ids = list(SearchDocument.objects.filter(community=community).values_list("pk", flat=True))
            with connection.cursor() as cursor:
                for start in range(0, len(ids), 900):
                    chunk = ids[start:start + 900]
                    cursor.execute(f"DELETE FROM {search.FTS_TABLE} WHERE rowid IN ({','.join(['%s'] * len(chunk))})", chunk)
        SearchDocument.objects.filter(community=community).delete()
        community.delete()


def measure(n: int = N_IDEAS, repeats: int = 15) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pumasi.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from pumasi.cocreation import search

    call_command("migrate", verbosity=0, interactive=False)
    started = time.perf_counter()
    community = _build(n)
    build_s = time.perf_counter() - started
    results: dict = {"vendor": connection.vendor, "ideas": n, "build_s": round(build_s, 1), "queries": {}}
    try:
        for query in QUERIES:
            row = {}
            for label, force_like in (("index", False), ("like_scan", True)):
                samples = []
                hits, method = 0, ""
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    result = search.search(community=community, query=query, limit=30, force_like=force_like)
                    samples.append((time.perf_counter() - t0) * 1000)
                    hits, method = len(result.hits), result.method
                row[label] = {"method": method, "p50_ms": round(statistics.median(samples), 2),
                              "p95_ms": round(_percentile(samples, 0.95), 2), "hits": hits}
            results["queries"][query] = row
    finally:
        _drop(community)
    return results


def run() -> list[dict]:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    db = WORKDIR / f"cocreation-{os.getpid()}.sqlite3"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PUMASI_")}
    env.update(PUMASI_DATABASE_URL=f"sqlite:///{db}", PUMASI_VAR_DIR=str(WORKDIR / "var"),
               DJANGO_SETTINGS_MODULE="pumasi.settings", PUMASI_BENCH_IDEAS=str(N_IDEAS))
    try:
        done = subprocess.run([sys.executable, "-m", "bench.cocreation", "--measure"], cwd=ROOT, env=env,
                              check=True, capture_output=True, text=True)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    results = json.loads(done.stdout.strip().splitlines()[-1])
    rows = []
    for query, row in results["queries"].items():
        index, scan = row["index"], row["like_scan"]
        rows.append({"name": f"search p50 '{query}' ({index['method']})", "value": index["p50_ms"], "unit": "ms",
                     "ratio": index["p50_ms"] / scan["p50_ms"] if scan["p50_ms"] else None, "of": "LIKE scan",
                     "note": f"p95 {index['p95_ms']} ms; LIKE scan p50 {scan['p50_ms']} / p95 {scan['p95_ms']} ms; "
                             f"{index['hits']} hits; {results['ideas']:,} ideas on {results['vendor']}"})
    return rows


if __name__ == "__main__":
    if "--measure" in sys.argv:
        print(json.dumps(measure(), ensure_ascii=False))
    else:
        for line in run():
            print(line)
