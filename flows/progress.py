"""Progress lines for long stages: items done / total, rate and time left."""

from __future__ import annotations

import logging
import time


class Progress:
    def __init__(self, stage: str, total: int, logger: logging.Logger | logging.LoggerAdapter):
        self.stage, self.total, self.logger = stage, total, logger
        self.done = 0
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def update(self, n: int, note: str = "") -> None:
        self.done += n
        rate = self.done / max(self.seconds, 1e-9)
        left = (self.total - self.done) / rate if rate else 0.0
        pct = 100 * self.done / max(self.total, 1)
        self.logger.info(
            f"{self.stage}: {self.done}/{self.total} ({pct:.0f}%), {rate:.2f}/s, "
            f"ETA {_duration(left)}{', ' + note if note else ''}"
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
