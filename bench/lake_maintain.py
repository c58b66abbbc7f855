"""What `adforge lake maintain` buys a DuckLake written in many small commits.

A lake (SQLite catalog, local data folder) gets its briefs in one commit, then --commits small batches of
copy rows through Store.write (the realistic columns of bench/overhead.py's duckdb_writes), one commit
each, as a run stores chunk after chunk: a snapshot and a small Parquet file per commit. Then, on the
read-only connection `adforge query` uses, the median time of a query of v_assets (copies joined with
their briefs, scores, reviews, images and creatives) and of a count(*) of copies, before and after
`maintain` as the weekly deployment runs it (retention 7 days, an hour's grace: the merged-away files
stay until the next run), with the lake's files, bytes and snapshots before and after; and finally a
second upkeep with retention 0 and no grace, which deletes the files and snapshots the first one kept."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import save, timed

ASSETS_SQL = (
    "SELECT brand, channel, review_status, count(*) AS ads, avg(length(body)) AS body_chars, "
    "max(created_at) AS newest FROM v_assets GROUP BY ALL ORDER BY ALL"
)
COUNT_SQL = "SELECT count(*) FROM copies"


def copy_rows(commit: int, rows: int) -> list[dict[str, Any]]:
    """One commit's batch, as bench/overhead.py's duckdb_writes builds its rows."""
    first = commit * rows
    return [
        {
            "copy_id": f"copy-{i:08d}",
            "run_id": "run-1",
            "brief_id": f"b{i // 3 % 100}",
            "brief_hash": "h",
            "channel": "instagram",
            "variant": i % 3 + 1,
            "headline": "Nordbrew cold brew",
            "body": "Nordbrew makes barista coffee at home in thirty seconds. " * 3,
            "cta": "Shop now",
            "image_prompt": "a glass of iced coffee on a table",
            "attempts": 1,
            "seed": i,
            "text_model": "m",
            "sampling": "{}",
            "prompt": "[]",
            "prompt_tokens": 200,
            "output_tokens": 80,
            "checks": '{"channel_limits": "passed"}',
            "similarity": 0.3,
        }
        for i in range(first, first + rows)
    ]


def brief_rows() -> list[dict[str, Any]]:
    return [
        {"brief_id": f"b{i}", "brief_hash": "h", "run_id": "run-1", "brand": f"Brand{i % 7}",
         "product": "Cold brew concentrate", "audience": "busy professionals",
         "key_message": "Barista coffee at home", "tone": "warm", "channels": ["instagram"], "variants": 3,
         "images_per_copy": 0, "banned_words": [], "language": "en"}
        for i in range(100)
    ]  # fmt: skip


def write_lake(db: str, commits: int, rows: int) -> float:
    """The lake, written one small commit at a time; returns the seconds the writes took."""
    from adforge.storage.db import Store

    store = Store(db)
    with store.lingering(5), timed() as t:  # one connection for the writes, as a run keeps it
        store.write({"briefs": brief_rows()})
        for commit in range(commits):
            store.write({"copies": copy_rows(commit, rows)})
    return t["s"]


def median_s(db: str, sql: str, repeats: int) -> tuple[float, Any]:
    """Median seconds of the query on the connection `adforge query` uses (after one run to warm up),
    and its result."""
    from adforge.storage.db import open_existing

    con = open_existing(db)
    try:
        result = con.execute(sql).fetchall()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - start)
    finally:
        con.close()
    return statistics.median(times), result


def ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=1000, help="small writes, one commit each")
    parser.add_argument("--rows", type=int, default=10, help="copy rows per commit")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each query (median)")
    args = parser.parse_args()
    from adforge.storage.maintenance import maintain

    with tempfile.TemporaryDirectory() as tmp:
        db = f"ducklake:sqlite:{Path(tmp) / 'lake.sqlite'}"
        write_s = write_lake(db, args.commits, args.rows)
        assets_before, assets = median_s(db, ASSETS_SQL, args.repeats)
        count_before, count = median_s(db, COUNT_SQL, args.repeats)
        weekly = maintain(db, retention_days=7)
        assets_after, assets_again = median_s(db, ASSETS_SQL, args.repeats)
        count_after, count_again = median_s(db, COUNT_SQL, args.repeats)
        assert (assets_again, count_again) == (assets, count), "the upkeep changed what the queries return"
        assert count == [(args.commits * args.rows,)]
        full = maintain(db, retention_days=0, grace_minutes=0)
        files_on_disk = len(list(Path(tmp).rglob("*.parquet")))
    before, after = weekly.before, weekly.after
    table = [
        {"measure": "v_assets query, median ms", "before": ms(assets_before), "after": ms(assets_after)},
        {"measure": "count(*) of copies, median ms", "before": ms(count_before), "after": ms(count_after)},
        *(
            {"measure": label, "before": getattr(before, key), "after": getattr(after, key)}
            for key, label in (
                ("live_files", "data files read by the latest snapshot"),
                ("files", "files kept for all snapshots"),
                ("bytes", "bytes of those files"),
                ("awaiting_deletion", "files awaiting deletion"),
                ("snapshots", "snapshots"),
            )
        ),
    ]
    save(
        "lake_maintain",
        {
            "commits": args.commits,
            "rows_per_commit": args.rows,
            "write_s": round(write_s, 1),
            "commits_per_s": round(args.commits / write_s, 1),
            "table": table,
            "weekly_upkeep": {"summary": weekly.summary(), "seconds": round(weekly.seconds, 1)},
            "full_upkeep": {
                "summary": full.summary(),
                "seconds": round(full.seconds, 1),
                "after": asdict(full.after),
                "parquet_files_on_disk": files_on_disk,
            },
            "ratios": {
                f"v_assets query before / after maintain, {args.commits} commits": round(
                    assets_before / assets_after, 2
                ),
                f"count(*) copies before / after maintain, {args.commits} commits": round(
                    count_before / count_after, 2
                ),
                f"data files before / after maintain, {args.commits} commits": round(
                    before.live_files / after.live_files, 1
                ),
            },
        },
    )


if __name__ == "__main__":
    main()
