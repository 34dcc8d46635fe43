"""Ledger benchmark: postings/s single and batched, balance-read latency at 1,000,000 postings, beside
the raw INSERT rate of the same database in the same run.

`python -m bench.ledger` runs it alone. The measuring happens in a child process with its own
throwaway SQLite database under var/bench/ (never the demo database), so that Django is set up
against that file whatever else the bench run has configured.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench"
TARGET_POSTINGS = int(os.environ.get("PUMASI_BENCH_LEDGER_POSTINGS", "1000000"))
TARGET_BATCHED = 10_000


def _env(db: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PUMASI_")}
    env.update(PUMASI_DATABASE_URL=f"sqlite:///{db}", PUMASI_VAR_DIR=str(WORKDIR / "var"),
               DJANGO_SETTINGS_MODULE="pumasi.settings", PUMASI_JOBS_IMMEDIATE="1",
               PUMASI_BENCH_LEDGER_POSTINGS=str(TARGET_POSTINGS))
    return env


def run() -> list[dict]:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    db = WORKDIR / f"ledger-{os.getpid()}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    try:
        done = subprocess.run([sys.executable, "-m", "bench.ledger", "--measure"], cwd=ROOT, env=_env(db),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the ledger benchmark failed:\n{done.stderr[-4000:]}")
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    raw = figures["raw_insert_rows_per_s"]
    rows = [
        {"name": "raw multi-row INSERT (same db)", "value": raw, "unit": "rows/s", "ratio": None, "of": None,
         "note": "plain table, 500 rows per statement"},
        {"name": "post_transaction, one at a time", "value": figures["single_postings_per_s"], "unit": "postings/s",
         "ratio": figures["single_postings_per_s"] / raw, "of": "raw INSERT", "note": "2 postings each, hash chain, balances"},
        {"name": "post_transactions, batched", "value": figures["batched_postings_per_s"], "unit": "postings/s",
         "ratio": figures["batched_postings_per_s"] / raw, "of": "raw INSERT",
         "note": f"{figures['batch_size']} transactions per call; target >= {TARGET_BATCHED:,}"},
        {"name": "bulk load through the triggers", "value": figures["bulk_load_postings_per_s"], "unit": "postings/s",
         "ratio": figures["bulk_load_postings_per_s"] / raw, "of": "raw INSERT", "note": "raw INSERTs + hashes"},
        {"name": f"balance read at {figures['postings_total']:,} postings (median)",
         "value": figures["balance_read_median_us"], "unit": "µs", "ratio": None, "of": None,
         "note": f"p99 {figures['balance_read_p99_us']:.0f} µs; SUM over postings: {figures['sum_read_ms']:.1f} ms"},
    ]
    return rows


# --- the child process ---------------------------------------------------------------------------

def _measure() -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db import transaction as dbtx
    from django.db.models import F
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from pumasi.communities.models import Community
    from pumasi.ledger import selectors, services
    from pumasi.ledger.models import AccountBalance, ChainHead, Transaction

    community = Community.objects.create(name="Bench", slug="bench-ledger", kind="cooperative")
    cash = services.standard_account(community=community, key="cash")
    income = services.standard_account(community=community, key="income")
    figures: dict = {}

    # Raw INSERT rate of the same database: a plain table shaped like postings.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, transaction_id BIGINT, account_id BIGINT, "
                       "amount BIGINT, currency VARCHAR(3))")
    raw_rows = 200_000
    started = time.perf_counter()
    with dbtx.atomic(), connection.cursor() as cursor:
        for start in range(0, raw_rows, 500):
            values = []
            for i in range(start, start + 500):
                values += [i, cash.pk, i + 1, "KRW"]
            cursor.execute("INSERT INTO bench_raw (transaction_id, account_id, amount, currency) VALUES "
                           + ",".join(["(%s,%s,%s,%s)"] * 500), values)
    figures["raw_insert_rows_per_s"] = raw_rows / (time.perf_counter() - started)

    single = 1000
    started = time.perf_counter()
    for i in range(single):
        services.post_transaction(community=community, actor=None, idempotency_key=f"s{i}", memo="single",
                                  postings=[(cash, 100 + i), (income, -(100 + i))])
    figures["single_postings_per_s"] = 2 * single / (time.perf_counter() - started)

    batch, batches = 1000, 20
    started = time.perf_counter()
    for b in range(batches):
        services.post_transactions(community=community, actor=None, entries=[
            {"idempotency_key": f"b{b}-{i}", "memo": "batched", "postings": [(cash, 7), (income, -7)]}
            for i in range(batch)])
    figures["batched_postings_per_s"] = 2 * batch * batches / (time.perf_counter() - started)
    figures["batch_size"] = batch

    # Bulk load up to the target with raw multi-row INSERTs (through the triggers, which refuse
    # only UPDATE and DELETE), hashes chained properly so `ledger verify` still passes.
    head = ChainHead.objects.get(pk=community.pk)
    seq, prev = head.seq, head.hash
    existing = 2 * (single + batch * batches)
    to_load = max(0, (TARGET_POSTINGS - existing) // 2)
    now = timezone.now()
    stamp = now.isoformat()
    started = time.perf_counter()
    next_id = (Transaction.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    chunk = 1000
    with dbtx.atomic(), connection.cursor() as cursor:
        for start in range(0, to_load, chunk):
            tx_values, posting_values = [], []
            count = min(chunk, to_load - start)
            for i in range(count):
                seq += 1
                key = f"bulk{start + i}"
                amount = 1 + (start + i) % 997
                digest = services.chain_hash(
                    community_id=community.pk, seq=seq, prev_hash=prev, idempotency_key=key, kind="manual", memo="bulk",
                    reference={}, actor_id=None, reverses_id=None, created_at=now,
                    postings=[(cash.pk, "KRW", amount), (income.pk, "KRW", -amount)])
                tx_values += [next_id, community.pk, seq, key, "-", "manual", "bulk", "{}", stamp, prev, digest]
                posting_values += [next_id, cash.pk, amount, "KRW", next_id, income.pk, -amount, "KRW"]
                prev = digest
                next_id += 1
            cursor.execute(
                "INSERT INTO ledger_transaction (id, community_id, seq, idempotency_key, request_hash, kind, memo, "
                "reference, created_at, prev_hash, hash) VALUES " + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * count),
                tx_values)
            cursor.execute("INSERT INTO ledger_posting (transaction_id, account_id, amount, currency) VALUES "
                           + ",".join(["(%s,%s,%s,%s)"] * (2 * count)), posting_values)
        loaded_sum = sum(1 + n % 997 for n in range(to_load))
        AccountBalance.objects.filter(account=cash).update(balance=F("balance") + loaded_sum,
                                                           postings=F("postings") + to_load)
        AccountBalance.objects.filter(account=income).update(balance=F("balance") - loaded_sum,
                                                             postings=F("postings") + to_load)
        ChainHead.objects.filter(pk=community.pk).update(seq=seq, hash=prev)
    figures["bulk_load_postings_per_s"] = 2 * to_load / max(1e-9, time.perf_counter() - started)
    from pumasi.ledger.models import Posting

    figures["postings_total"] = Posting.objects.count()
    samples = []
    for _i in range(2000):
        t0 = time.perf_counter()
        selectors.balance_of(cash)
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    figures["balance_read_median_us"] = statistics.median(samples)
    figures["balance_read_p99_us"] = samples[int(len(samples) * 0.99)]
    t0 = time.perf_counter()
    from django.db.models import Sum

    total = Posting.objects.filter(account=cash).aggregate(s=Sum("amount"))["s"]
    figures["sum_read_ms"] = (time.perf_counter() - t0) * 1000
    assert total == selectors.balance_of(cash), "kept balance differs from the sum of postings"
    return figures


def main() -> int:
    if "--measure" in sys.argv:
        print(json.dumps(_measure()))
        return 0
    rows = run()
    for row in rows:
        ratio = f"  ({row['ratio']:.2f} of {row['of']})" if row.get("ratio") is not None else ""
        print(f"{row['name']:48} {row['value']:>14,.1f} {row['unit']:11}{ratio}  {row.get('note') or ''}")
    batched = next(r for r in rows if r["name"].startswith("post_transactions"))
    print(f"batched target {TARGET_BATCHED:,} postings/s: {'met' if batched['value'] >= TARGET_BATCHED else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
