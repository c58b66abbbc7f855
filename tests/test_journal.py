"""A reader never costs a run its work: writes wait for a held DuckDB file, journaled, and the journal
of a run killed while waiting is stored by the next store opened on the database."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from adforge.storage.db import Store, journal_folder

# A reader that holds the file until it is killed (a notebook or `duckdb -readonly` left open).
HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); print('held', flush=True); input()"
)
# Opens the store while the file is free, then writes one failure row when told to (a line on stdin).
WRITE = """
import logging, sys
from adforge.storage.db import Store
logging.basicConfig(level=logging.WARNING)
store = Store(sys.argv[1], wait_s=1)
print("ready", flush=True)
sys.stdin.readline()
store.write({"failures": [{"run_id": "run-w", "stage": "copy", "kind": "rule", "item_id": "copy-1",
                           "reason": "r", "attempts": 1}]})
print("written", flush=True)
"""


def start(code: str, db: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc


def rows(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT run_id, item_id FROM failures").fetchall()


def test_a_write_waits_for_a_reader_and_names_it(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    db = tmp_path / "a.duckdb"
    store = Store(db, wait_s=0.5)
    reader = start(HOLD, db)
    assert reader.stdout and reader.stdout.readline() == "held\n"
    # The reader lets go after a few of the writer's waits.
    releaser = subprocess.Popen(["sh", "-c", f"sleep 2; kill {reader.pid}"])
    with caplog.at_level(logging.WARNING, logger="adforge.storage.db"):
        store.write({"failures": [{"run_id": "run-a", "stage": "copy", "kind": "rule", "item_id": "copy-1",
                                   "reason": "r", "attempts": 1}]})  # fmt: skip
    releaser.wait()
    reader.wait()
    assert rows(db) == [("run-a", "copy-1")]
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for")]
    assert waits and f"held by PID {reader.pid} (python" in waits[0]
    assert not journal_folder(db).exists(), "the journal is empty once the write is stored"


def test_a_run_killed_while_waiting_loses_nothing(tmp_path: Path):
    db = tmp_path / "a.duckdb"
    Store(db)
    writer = start(WRITE, db)
    assert writer.stdout and writer.stdout.readline() == "ready\n"
    reader = start(HOLD, db)
    assert reader.stdout and reader.stdout.readline() == "held\n"
    assert writer.stdin is not None
    writer.stdin.write("go\n")
    writer.stdin.flush()
    assert writer.stderr and "waiting for" in writer.stderr.readline()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    reader.kill()
    reader.wait()
    assert rows(db) == [] and list(journal_folder(db).iterdir()), "the work is in the journal"

    Store(db)  # the next store on this database stores it, without generating anything
    assert rows(db) == [("run-w", "copy-1")]
    assert not journal_folder(db).exists()
