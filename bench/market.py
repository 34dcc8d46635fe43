"""Shop benchmark: orders per second under contention for one variant (threads racing through
`place_order`, each with its own connection), beside the bare locked stock decrement of the same
database in the same run; and the shop page with 5,000 products, p95 server time, beside the bare
hello view of the same run.

`python -m bench.market` runs it alone. The measuring happens in a child process against a
throwaway SQLite database under var/bench/ (migrated first), never the demo database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench"
ORDERS = int(os.environ.get("PUMASI_BENCH_MARKET_ORDERS", "400"))
THREADS = int(os.environ.get("PUMASI_BENCH_MARKET_THREADS", "8"))
PRODUCTS = int(os.environ.get("PUMASI_BENCH_MARKET_PRODUCTS", "5000"))


def _env(db: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PUMASI_")}
    env.update(PUMASI_DATABASE_URL=f"sqlite:///{db}", PUMASI_VAR_DIR=str(WORKDIR / "var"),
               DJANGO_SETTINGS_MODULE="bench.settings", PUMASI_JOBS_IMMEDIATE="1", PUMASI_EMAIL_URL="memory://",
               PUMASI_BENCH_MARKET_ORDERS=str(ORDERS), PUMASI_BENCH_MARKET_THREADS=str(THREADS),
               PUMASI_BENCH_MARKET_PRODUCTS=str(PRODUCTS), PUMASI_ALLOWED_HOSTS="testserver,localhost")
    return env


def run() -> list[dict]:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    db = WORKDIR / f"market-{os.getpid()}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    try:
        done = subprocess.run([sys.executable, "-m", "bench.market", "--measure"], cwd=ROOT, env=_env(db),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the market benchmark failed:\n{done.stderr[-4000:]}")
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    f = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        {"name": "bare locked stock decrement (same db)", "value": f["bare_decrements_per_s"], "unit": "ops/s",
         "ratio": None, "of": None, "note": f"{THREADS} threads, one row, BEGIN IMMEDIATE + UPDATE"},
        {"name": f"place_order, {THREADS} threads on one variant", "value": f["orders_per_s"], "unit": "orders/s",
         "ratio": f["orders_per_s"] / f["bare_decrements_per_s"], "of": "bare decrement",
         "note": f"{f['sold']} sold of {f['stock']} units, {f['refused']} refused, oversold: {f['oversold']}"},
        {"name": "bare hello view (same run)", "value": f["hello_p95_ms"], "unit": "ms p95", "ratio": None, "of": None,
         "note": None},
        {"name": f"shop page, {PRODUCTS:,} products", "value": f["shop_p95_ms"], "unit": "ms p95",
         "ratio": f["shop_p95_ms"] / max(f["hello_p95_ms"], 1e-6), "of": "hello view",
         "note": f"p50 {f['shop_p50_ms']:.1f} ms; API list (50) p95 {f['api_p95_ms']:.1f} ms"},
    ]


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _measure() -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections, transaction
    from django.test import Client

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from pumasi.communities.models import Community, Membership
    from pumasi.core.errors import Busy, Conflict
    from pumasi.market import services
    from pumasi.market.models import Product, Variant

    user_model = get_user_model()
    organiser = user_model.objects.create_user(email="org@bench.example", password="x" * 12)
    community = Community.objects.create(name="Bench shop", slug="bench-shop", kind="company")
    Membership.objects.create(community=community, user=organiser, role="organiser")
    buyers = []
    for index in range(THREADS):
        buyer = user_model.objects.create_user(email=f"b{index}@bench.example", password="x" * 12)
        Membership.objects.create(community=community, user=buyer, role="member")
        buyers.append(buyer)
    product = services.create_product(actor=organiser, community=community, title="Hot tee", designer=buyers[0],
                                      variants=["M"], unit_cost=5000, floor_price=10000, low_stock_threshold=5)
    variant = product.variants.get()
    stock = ORDERS // 2
    services.receive_stock(actor=organiser, product=product, quantities={variant.pk: stock})
    services.list_product(actor=organiser, product=product)
    figures: dict = {"stock": stock}

    # The floor: the same lock-and-decrement without any of the order's bookkeeping.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_stock (id INTEGER PRIMARY KEY, stock BIGINT)")
        cursor.execute("INSERT INTO bench_stock (id, stock) VALUES (1, %s)", [10**9])

    def bare(count: int) -> None:
        try:
            for _ in range(count):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("UPDATE bench_stock SET stock = stock - 1 WHERE id = 1 AND stock > 0")
        finally:
            connections.close_all()

    started = time.perf_counter()
    threads = [threading.Thread(target=bare, args=(ORDERS // THREADS,)) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    figures["bare_decrements_per_s"] = (ORDERS // THREADS) * THREADS / (time.perf_counter() - started)

    outcome = {"sold": 0, "refused": 0}
    lock = threading.Lock()

    def buy(buyer, count: int) -> None:
        try:
            for _ in range(count):
                try:
                    services.place_order(actor=buyer, product=Product.objects.get(pk=product.pk),
                                         lines=[{"variant_id": variant.pk, "quantity": 1}],
                                         shipping_address="1 Bench road, Seoul")
                    key = "sold"
                except (Conflict, Busy):
                    key = "refused"
                with lock:
                    outcome[key] += 1
        finally:
            connections.close_all()

    started = time.perf_counter()
    threads = [threading.Thread(target=buy, args=(buyer, ORDERS // THREADS)) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    figures.update(outcome)
    figures["orders_per_s"] = (outcome["sold"] + outcome["refused"]) / elapsed
    figures["oversold"] = Variant.objects.get(pk=variant.pk).stock < 0 or outcome["sold"] > stock

    # The shop page with many products.
    designer = buyers[0]
    batch = [Product(community=community, title=f"Product {i}", designer=designer, status="listed", unit_cost=1000,
                     floor_price=2000, price=3000, currency="KRW") for i in range(PRODUCTS)]
    Product.objects.bulk_create(batch, batch_size=1000)
    Variant.objects.bulk_create([Variant(product=p, label="M", stock=10) for p in Product.objects.filter(
        community=community, title__startswith="Product ")], batch_size=1000)
    client = Client()

    def timed(url: str, repeats: int = 40) -> list[float]:
        samples = []
        client.get(url)
        for _ in range(repeats):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        return samples

    hello = timed("/bench/hello")
    shop = timed(f"/c/{community.slug}/shop/")
    api = timed(f"/api/v1/market/{community.slug}/products?limit=50")
    figures.update(hello_p95_ms=_p(hello, 0.95), shop_p95_ms=_p(shop, 0.95), shop_p50_ms=_p(shop, 0.5),
                   api_p95_ms=_p(api, 0.95))
    return figures


if __name__ == "__main__":
    if "--measure" in sys.argv:
        print(json.dumps(_measure()))
    else:
        for row in run():
            print(row)
