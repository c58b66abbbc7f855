"""Review decisions from the command line: approve, reject, statuses, and exports that take approved ads
only (fake generators, real DuckDB)."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from adforge.flows.cli import main
from adforge.flows.generate_campaigns import generate_campaigns


def statuses(db: str) -> dict[str, str]:
    with duckdb.connect(db, read_only=True) as con:
        return dict(con.execute("SELECT copy_id, review_status FROM v_assets").fetchall())


def test_new_ads_await_review_and_the_summary_says_how_many(sample_db):
    summary, db, _ = sample_db
    assert set(statuses(db).values()) == {"pending"}
    assert summary["awaiting_review"] == summary["copies"] > 0
    page = Path(summary["report"]).read_text()
    link = f"http://127.0.0.1:8765/?run={summary['run_id']}&amp;status=pending"
    assert f"{summary['copies']} ads await review" in page and f"<a href='{link}'>" in page


def test_approve_and_reject_by_id_then_every_pending_one(sample_db, capsys):
    _, db, _ = sample_db
    first, second, *rest = sorted(statuses(db))
    assert main(["approve", first, "--db", db, "--reviewer", "alice"]) == 0
    assert "approved 1 ads as alice" in capsys.readouterr().out
    assert main(["reject", second, "--reason", "invents a discount", "--db", db, "--reviewer", "bob"]) == 0
    with duckdb.connect(db, read_only=True) as con:
        sql = "SELECT copy_id, status, reason, reviewer FROM v_review_status WHERE status <> 'pending'"
        rows = con.execute(f"{sql} ORDER BY 1").fetchall()
    assert rows == [(first, "approved", None, "alice"), (second, "rejected", "invents a discount", "bob")]
    # A later decision wins; --all-pending leaves decided ads alone.
    assert main(["approve", second, "--db", db]) == 0
    assert main(["reject", "--all-pending", "--reason", "off brand", "--db", db]) == 0
    now = statuses(db)
    assert (now[first], now[second]) == ("approved", "approved") and {now[c] for c in rest} == {"rejected"}
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 3 + len(rest)


def test_bad_decisions_are_refused_with_a_reason(sample_db, capsys, tmp_path: Path):
    _, db, _ = sample_db
    one = sorted(statuses(db))[0]
    with pytest.raises(SystemExit) as refused:
        main(["reject", one, "--db", db])  # no --reason
    assert refused.value.code == 2
    assert main(["reject", one, "--reason", "  ", "--db", db]) == 2
    assert main(["approve", "--db", db]) == 2
    capsys.readouterr()
    # An unknown id is named; the known ones are recorded all the same.
    assert main(["approve", one, "copy-nope", "--db", db]) == 1
    printed = capsys.readouterr()
    assert "no ad copy-nope" in printed.err and "approved 1 ads" in printed.out
    assert statuses(db)[one] == "approved"
    assert main(["approve", one, "--run", "run-other", "--db", db]) == 1
    assert main(["approve", one, "--db", str(tmp_path / "missing.duckdb")]) == 1
    assert not (tmp_path / "missing.duckdb").exists()


def test_exports_take_approved_ads_unless_told_otherwise(sample_db, tmp_path: Path, capsys):
    summary, db, settings = sample_db
    with duckdb.connect(db, read_only=True) as con:
        sql = "SELECT copy_id FROM copies WHERE channel IN ('facebook', 'instagram') ORDER BY 1"
        meta = [r[0] for r in con.execute(sql).fetchall()]
    approved = meta[:2]
    assert main(["approve", *approved, "--db", db]) == 0
    assert main(["reject", meta[2], "--reason", "tone", "--db", db]) == 0

    def exported(*flags: str) -> tuple[list[str], list[str]]:
        """The Meta sheet's ad names and the Parquet export's copy ids; its reviews in `reviews`."""
        out = tmp_path / "-".join(["out", *flags])
        sheet = [
            "export",
            "--format",
            "meta",
            "--to",
            str(out),
            "--db",
            db,
            "--brand-kits",
            settings.brand_kits,
        ]
        assert main([*sheet, *flags]) == 0
        with open(out / "meta.csv", newline="", encoding="utf-8") as f:
            names = [row["Ad Name"] for row in csv.DictReader(f)]
        assert main(["export", "--to", str(out / "tables"), "--db", db, *flags]) == 0
        reviews[:] = pq.read_table(out / "tables" / "reviews.parquet").column("item_id").to_pylist()
        return names, pq.read_table(out / "tables" / "copies.parquet").column("copy_id").to_pylist()

    reviews: list[str] = []
    capsys.readouterr()
    names, copies = exported()
    assert sorted(names) == approved and sorted(copies) == approved
    assert f"left out {len(meta) - 2} ads not approved" in capsys.readouterr().err
    names, copies = exported("--include-pending")
    assert sorted(names) == meta and len(copies) == len(statuses(db))
    names, copies = exported("--include-pending", "--run", summary["run_id"])
    assert sorted(names) == meta and len(copies) == len(statuses(db))
    assert sorted(reviews) == sorted([*approved, meta[2]])  # the run's decisions go with it


def test_decisions_survive_a_rerun(sample_db):
    _, db, settings = sample_db
    one = sorted(statuses(db))[0]
    assert main(["approve", one, "--db", db]) == 0
    briefs = str(Path(settings.brand_kits).parent / "briefs")
    again = generate_campaigns(briefs=[briefs], settings=settings.to_dict() | {"db": db})
    assert again["copies"] == 0 and again["awaiting_review"] == 0
    assert statuses(db)[one] == "approved"
