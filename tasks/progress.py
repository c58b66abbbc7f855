"""Progress lines for long work: items done / total, rate and time left, at most every `every` seconds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

EVERY_S = 10.0


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run's logger inside a flow or task run (its lines reach the dashboard), else adforge's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("adforge")


class Progress:
    def __init__(
        self, stage: str, total: int, logger: logging.Logger | logging.LoggerAdapter, every: float = EVERY_S
    ):
        self.stage, self.total, self.logger, self.every = stage, total, logger, every
        self.done = 0
        self.note = ""
        self.start = self.logged = time.perf_counter()
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def update(self, n: int, note: str = "") -> None:
        """Count n more items done; log when `every` seconds have passed or the work is complete."""
        with self._lock:
            self.done += n
            self.note = note or self.note
            if self.done >= self.total or time.perf_counter() - self.logged >= self.every:
                self._log()

    def _log(self) -> None:
        self.logged = time.perf_counter()
        rate = self.done / max(self.seconds, 1e-9)
        eta = (
            f"ETA {_duration((self.total - self.done) / rate)}"
            if rate
            else f"{_duration(self.seconds)} so far"
        )
        pct = 100 * self.done / max(self.total, 1)
        self.logger.info(
            f"{self.stage}: {self.done}/{self.total} ({pct:.0f}%), {rate:.2f}/s, {eta}"
            f"{', ' + self.note if self.note else ''}"
        )

    @contextmanager
    def heartbeat(self) -> Iterator[Progress]:
        """Log every `every` seconds while the block runs, even when no item finishes in between
        (one long model call)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.every):
                with self._lock:
                    if time.perf_counter() - self.logged >= self.every:
                        self._log()

        thread = threading.Thread(target=beat, name=f"progress-{self.stage}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
