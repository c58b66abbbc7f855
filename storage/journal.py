"""A journal of finished work waiting to be stored: each write's rows are saved as Arrow files before
its database transaction and removed once it has committed. A run that is killed while it waits for
the database (another process holds a DuckDB file) loses nothing: the next store opened on that
database writes what the journal holds, and the work is not generated again."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

SUFFIX = ".arrow"


class Journal:
    """A folder of entries, one per write: `<time>-<host>-<pid>/` holding one Arrow file per table.
    An entry is complete once it has its final name (it is written under a temporary one)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def add(self, tables: dict[str, pa.Table]) -> Path:
        """Save the rows of one write; returns the entry, to be passed to `done` after the commit."""
        entry = self.folder / f"{time.time_ns()}-{socket.gethostname()}-{os.getpid()}"
        partial = self.folder / f".{entry.name}.partial"
        partial.mkdir(parents=True)
        for table, rows in tables.items():
            with ipc.new_file(partial / f"{table}{SUFFIX}", rows.schema) as out:
                out.write_table(rows)
        partial.rename(entry)
        return entry

    def done(self, entry: Path) -> None:
        shutil.rmtree(entry, ignore_errors=True)  # another process may have applied it already
        with contextlib.suppress(OSError):  # the folder stays while it holds other entries
            self.folder.rmdir()

    def orphans(self) -> list[tuple[Path, dict[str, pa.Table]]]:
        """Complete entries left by processes of this host that are gone, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for entry in sorted(self.folder.iterdir()):
            partial = entry.name.startswith(".")
            name = entry.name.strip(".").removesuffix(".partial").split("-")
            if len(name) < 3 or _alive(name[1:-1], name[-1]):
                continue
            if partial:  # its process died while writing it: the write never reached the database
                shutil.rmtree(entry, ignore_errors=True)
                continue
            tables = {f.stem: ipc.open_file(f).read_all() for f in sorted(entry.glob(f"*{SUFFIX}"))}
            found.append((entry, tables))
        return found


def _alive(host: list[str], pid: str) -> bool:
    """Whether the process that wrote an entry may still be running (entries of other hosts are theirs)."""
    if "-".join(host) != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True
