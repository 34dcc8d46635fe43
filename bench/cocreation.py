"""Benchmark for co-creation (issue 5): the idea list and search over one board with 10,000
ideas, 100,000 supports and 50,000 comments, beside a bare Django view of the same run.
`run()` is imported by the bench runner; `python -m bench.cocreation` runs it alone.

Measured in a child process against a throwaway SQLite database under var/bench/ (migrated
first), never the demo one, with bench.settings (pumasi's settings plus the bare hello view)
and DEBUG off. Every page is requested in-process through Django's test Client by a signed-in
member — the full middleware stack, URL resolving, the real view or API endpoint and its
template or schema — so "server time" is the time Django spends on one request, without
sockets. The bare view is measured the same way, so the ratio is the list's cost over the
floor. Targets: the board page (sorts new, most supported, trending; page 1 and a deep page),
the API list (same sorts; first page and a deep cursor), and search (trigram index against a
LIKE scan of the same rows). Target from the issue: p95 <= 150 ms per list page.

The data is bulk-loaded (bulk_create in batches, counters stored the way the services keep
them, ideas and comments mirrored into the search index and its FTS5 table as the services
do); supports and comments are spread over 60 days so "trending" has something to rank.
"""

from __future__ import annotations

import base64
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench"

N_IDEAS = int(os.environ.get("PUMASI_BENCH_IDEAS", "10000"))
N_SUPPORTS = int(os.environ.get("PUMASI_BENCH_SUPPORTS", "100000"))
N_COMMENTS = int(os.environ.get("PUMASI_BENCH_COMMENTS", "50000"))
N_PEOPLE = 2000  # supporters; the most supported idea can have at most this many
PAGE_SIZE = 20
REQUESTS = int(os.environ.get("PUMASI_BENCH_REQUESTS", "40"))  # per target, after warm-up
TARGET_BUDGET_S = 4.0  # stop a slow target early (but never below MIN_REQUESTS)
MIN_REQUESTS = 15
TARGET_P95_MS = 150
QUERIES = ["주차공간", "가로등 설치", "쓰레기 분리", "주차", "드문검색어"]  # the last matches nothing: a full scan for LIKE
WORDS = ["주차공간", "가로등", "쓰레기", "분리수거", "놀이터", "공원", "버스정류장", "횡단보도", "자전거", "도서관", "벤치",
         "설치", "늘려주세요", "고쳐주세요", "밝게", "안전하게", "깨끗하게", "골목", "밤에", "아이들"]
SORTS = ("new", "supported", "trending")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _summary(samples: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(_percentile(samples, 0.95), 2),
            "n": len(samples)}


def _support_counts(rng: random.Random, n_ideas: int, total: int, cap: int) -> list[int]:
    """A long tail: a few ideas gather hundreds of supports, most a handful."""
    weights = [1.0 / (rank + 10) ** 0.9 for rank in range(n_ideas)]
    rng.shuffle(weights)
    scale = total / sum(weights)
    counts = [min(cap, int(w * scale)) for w in weights]
    short = total - sum(counts)
    i = 0
    while short > 0:
        if counts[i % n_ideas] < cap:
            counts[i % n_ideas] += 1
            short -= 1
        i += 1
    return counts


def _build(n_ideas: int, n_supports: int, n_comments: int):
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from pumasi.cocreation import search, services
    from pumasi.cocreation.models import Idea, IdeaComment, IdeaSupport, SearchDocument
    from pumasi.communities.models import Membership
    from pumasi.communities.services import create_community

    User = get_user_model()
    rng = random.Random(7)
    now = timezone.now()
    owner = User.objects.create_user(email="bench-owner@example.com", password="bench-password-1")
    community = create_community(actor=owner, name="Bench cocreation", slug="bench-coc", kind="residents")
    board = services.create_board(actor=owner, community=community, title="동네 개선 아이디어",
                                  question="우리 동네에 무엇이 필요할까요?", categories=["안전", "환경", "교통"])
    # Rows written by the loader carry their own timestamps (spread over 60 days), so the
    # auto_now_add defaults are switched off in this throwaway process only.
    for model in (Idea, IdeaSupport, IdeaComment):
        field = model._meta.get_field("created_at")
        field.auto_now_add = False
    Idea._meta.get_field("updated_at").auto_now = False

    def ago(max_days: float):
        return now - timedelta(seconds=rng.random() * max_days * 86400)

    with transaction.atomic():
        people = User.objects.bulk_create([
            User(email=f"bench-{i}@example.com", password="!", display_name=f"주민 {i}") for i in range(N_PEOPLE)])
        Membership.objects.bulk_create([Membership(community=community, user=p) for p in people])
        supports = _support_counts(rng, n_ideas, n_supports, N_PEOPLE)
        comment_counts = [0] * n_ideas
        for _ in range(n_comments):
            comment_counts[rng.randrange(n_ideas)] += 1
        stamps = sorted(ago(60) for _ in range(n_ideas))  # ids ascend with time, as in real life
        ideas = []
        for i in range(n_ideas):
            title = " ".join(rng.sample(WORDS, 3))
            body = " ".join(rng.choices(WORDS, k=25))
            ideas.append(Idea(board=board, community=community, author=rng.choice(people), title=title, body=body,
                              category=rng.choice(["", "안전", "환경", "교통"]), support_count=supports[i],
                              comment_count=comment_counts[i], created_at=stamps[i], updated_at=stamps[i]))
        ideas = Idea.objects.bulk_create(ideas, batch_size=2000)
        batch: list = []
        for idea, count in zip(ideas, supports, strict=True):
            for person in rng.sample(people, count):
                batch.append(IdeaSupport(idea=idea, user=person, created_at=max(idea.created_at, ago(60))))
            if len(batch) >= 20000:
                IdeaSupport.objects.bulk_create(batch, batch_size=5000)
                batch = []
        IdeaSupport.objects.bulk_create(batch, batch_size=5000)
        comments = []
        for idea, count in zip(ideas, comment_counts, strict=True):
            for _ in range(count):
                comments.append(IdeaComment(idea=idea, author=rng.choice(people), body=" ".join(rng.choices(WORDS, k=12)),
                                            created_at=max(idea.created_at, ago(60))))
        comments = IdeaComment.objects.bulk_create(comments, batch_size=5000)
        # The search index, as services._index_idea and comment_on_idea keep it.
        slug = community.slug
        docs = [SearchDocument(kind="idea", object_id=idea.pk, community=community, url=f"/c/{slug}/ideas/{idea.pk}/",
                               title=idea.title, body=idea.body) for idea in ideas]
        by_id = {idea.pk: idea for idea in ideas}
        docs += [SearchDocument(kind="comment", object_id=c.pk, community=community,
                                url=f"/c/{slug}/ideas/{c.idea_id}/#comment-{c.pk}", title=by_id[c.idea_id].title, body=c.body)
                 for c in comments]
        docs = SearchDocument.objects.bulk_create(docs, batch_size=5000)
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {search.FTS_TABLE}(rowid, title, body) VALUES (%s, %s, %s)",
                                   [(d.pk, d.title, d.body) for d in docs])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return owner, community, board


def _time_target(client, url: str, budget_s: float = TARGET_BUDGET_S) -> dict:
    for _ in range(3):  # warm-up: template loading, caches, SQLite page cache
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    samples = []
    started = time.perf_counter()
    while len(samples) < REQUESTS and (len(samples) < MIN_REQUESTS or time.perf_counter() - started < budget_s):
        t0 = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return _summary(samples)


def _queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return len(captured)


def measure() -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from pumasi.cocreation import search

    call_command("migrate", verbosity=0, interactive=False)
    started = time.perf_counter()
    owner, community, board = _build(N_IDEAS, N_SUPPORTS, N_COMMENTS)
    results: dict = {"vendor": connection.vendor, "ideas": N_IDEAS, "supports": N_SUPPORTS, "comments": N_COMMENTS,
                     "build_s": round(time.perf_counter() - started, 1), "pages": {}, "queries": {}}
    client = Client()
    client.force_login(owner)
    results["hello"] = _time_target(client, "/bench/hello")
    deep_page = max(1, N_IDEAS * 4 // 5 // PAGE_SIZE)  # 80 % of the way down
    deep_offset = (deep_page - 1) * PAGE_SIZE
    results["deep_page"] = deep_page
    ids = list(board.ideas.order_by("-id").values_list("id", flat=True)[deep_offset - 1: deep_offset])
    for sort in SORTS:
        for depth, page in (("first", 1), ("deep", deep_page)):
            url = f"/c/{community.slug}/ideas/b/{board.pk}/?sort={sort}&page={page}"
            row = _time_target(client, url)
            row["queries"] = _queries(client, url)
            results["pages"][f"page {sort} {depth}"] = row
            api = f"/api/v1/communities/{community.slug}/idea-boards/{board.pk}/ideas?sort={sort}&limit={PAGE_SIZE}"
            if depth == "deep":
                cursor = str(ids[0]) if sort == "new" else f"o:{deep_offset}"
                api += "&cursor=" + base64.urlsafe_b64encode(cursor.encode()).decode().rstrip("=")
            row = _time_target(client, api)
            row["queries"] = _queries(client, api)
            results["pages"][f"api {sort} {depth}"] = row
    for query in QUERIES:
        row = {}
        for label, force_like in (("index", False), ("like_scan", True)):
            samples, hits, method = [], 0, ""
            for _ in range(15):
                t0 = time.perf_counter()
                result = search.search(community=community, query=query, limit=30, force_like=force_like)
                samples.append((time.perf_counter() - t0) * 1000)
                hits, method = len(result.hits), result.method
            row[label] = {"method": method, "hits": hits, **_summary(samples)}
        results["queries"][query] = row
    results["search_page"] = _time_target(client, f"/c/{community.slug}/search/?q=%EC%A3%BC%EC%B0%A8%EA%B3%B5%EA%B0%84")
    return results


def run() -> list[dict]:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    db = WORKDIR / f"cocreation-{os.getpid()}.sqlite3"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PUMASI_")}
    env.update(PUMASI_DATABASE_URL=f"sqlite:///{db}", PUMASI_VAR_DIR=str(WORKDIR / "var"), PUMASI_DEBUG="0",
               PUMASI_SECRET_KEY="bench-only-not-secret", PUMASI_API_RATE_LIMIT=str(10**9),
               DJANGO_SETTINGS_MODULE="bench.settings", PUMASI_BENCH_IDEAS=str(N_IDEAS),
               PUMASI_BENCH_SUPPORTS=str(N_SUPPORTS), PUMASI_BENCH_COMMENTS=str(N_COMMENTS),
               PUMASI_BENCH_REQUESTS=str(REQUESTS))
    try:
        done = subprocess.run([sys.executable, "-m", "bench.cocreation", "--measure"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"bench.cocreation --measure failed:\n{done.stderr[-4000:]}")
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    results = json.loads(done.stdout.strip().splitlines()[-1])
    data = (f"{results['ideas']:,} ideas, {results['supports']:,} supports, {results['comments']:,} comments "
            f"on {results['vendor']}")
    hello = results["hello"]
    rows = [{"name": "bare Django view p50 (test Client)", "value": hello["p50_ms"], "unit": "ms",
             "note": f"p95 {hello['p95_ms']} ms; n={hello['n']}; data loaded in {results['build_s']} s: {data}"}]
    for name, row in results["pages"].items():
        label = name.replace(" deep", f" deep (page {results['deep_page']})").replace("supported", "most supported")
        verdict = "ok" if row["p95_ms"] <= TARGET_P95_MS else f"OVER {TARGET_P95_MS} ms target"
        rows.append({"name": f"idea list {label} p95", "value": row["p95_ms"], "unit": "ms",
                     "ratio": row["p95_ms"] / hello["p95_ms"] if hello["p95_ms"] else None, "of": "bare view p95",
                     "note": f"p50 {row['p50_ms']} ms ({row['p50_ms'] / hello['p50_ms']:.1f}x bare); {row['queries']} queries; "
                             f"n={row['n']}; {verdict}"})
    page = results["search_page"]
    rows.append({"name": "search page '주차공간' p95", "value": page["p95_ms"], "unit": "ms",
                 "ratio": page["p95_ms"] / hello["p95_ms"] if hello["p95_ms"] else None, "of": "bare view p95",
                 "note": f"p50 {page['p50_ms']} ms; n={page['n']}"})
    for query, row in results["queries"].items():
        index, scan = row["index"], row["like_scan"]
        rows.append({"name": f"search p50 '{query}' ({index['method']})", "value": index["p50_ms"], "unit": "ms",
                     "ratio": index["p50_ms"] / scan["p50_ms"] if scan["p50_ms"] else None, "of": "LIKE scan",
                     "note": f"p95 {index['p95_ms']} ms; LIKE scan p50 {scan['p50_ms']} / p95 {scan['p95_ms']} ms; "
                             f"{index['hits']} hits; {results['ideas'] + results['comments']:,} ideas+comments indexed"})
    return rows


if __name__ == "__main__":
    if "--measure" in sys.argv:
        print(json.dumps(measure(), ensure_ascii=False))
    else:
        from bench.__main__ import _print_table

        started = time.monotonic()
        table = [("cocreation", row) for row in run()]
        _print_table(table)
        print(f"\n{time.monotonic() - started:.0f} s; load average {os.getloadavg()}")
