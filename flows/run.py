"""One run's record: its id and row in `runs`, the rows it writes, what it counted and timed."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from adforge.flows.redaction import redact, redacted
from adforge.flows.settings import Settings
from adforge.storage.artifacts import ArtifactStore
from adforge.storage.db import Store
from adforge.tasks.brand_kits import BrandKit, load_kits
from adforge.tasks.creatives import kit_id
from adforge.tasks.domain import Stage, StageRow, row
from adforge.tasks.ids import stable_hash
from adforge.tasks.progress import Progress


@dataclass
class Counts:
    """The run's counts, in the order the summary shows them."""

    status: str = "running"
    files_new: int = 0
    files_skipped: int = 0
    files_rejected: int = 0
    briefs_read: int = 0
    briefs_rejected: int = 0
    copies: int = 0
    images: int = 0
    creatives: int = 0
    failures: int = 0
    output_tokens: int = 0
    tokens_per_s: float | None = None
    images_per_s: float | None = None


def new_run_id() -> str:
    return f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def settings_hash(s: Settings, kits: Mapping[str, BrandKit] | None = None) -> str:
    """Hash of the settings that decide outputs: a file processed under other settings is new again."""
    parts: list[Any] = [asdict(s.sampling()), asdict(s.images())]
    if kits:  # only with kits, so that hashes from before kits existed stay valid
        parts.append(sorted((brand, kit_id(kit)) for brand, kit in kits.items()))
    return stable_hash(*parts)


class Run:
    """Each stage stores what it made before the next one starts, so a crash loses only unfinished
    work and a rerun skips what is stored."""

    def __init__(self, s: Settings, store: Store, logger: Any):
        self.s, self.store, self.logger = s, store, logger
        self.run_id = new_run_id()
        self.artifacts = ArtifactStore(s.artifacts)
        self.kits, problems = load_kits(s.brand_kits) if s.brand_kits else ({}, [])
        for problem in problems:  # a bad kit is left out; its brand's creatives are drawn without one
            logger.warning(f"brand kit: {problem}")
        self.output_settings = settings_hash(s, self.kits)
        self.counts = Counts()
        self.stages: list[StageRow] = []
        self.work = 0  # copies, images and creatives that were still to make
        self.started = time.perf_counter()

    def start(self, briefs: list[str], flow_run_id: Any) -> None:
        """Record the run; runs of this host that died are marked interrupted."""
        interrupted = self.store.start_run(
            {"run_id": self.run_id, "flow_run_id": flow_run_id, "status": "running",
             "started_at": datetime.now(UTC), "sources": [str(b) for b in briefs],
             "text_model": self.s.text_model, "image_model": self.s.image_model, "seed": self.s.seed,
             "settings": json.dumps(redacted(self.s.to_dict()))}
        )  # fmt: skip
        for old in interrupted:
            self.logger.warning(f"run {old} was interrupted; this run completes its work")

    def write(self, **tables: list[Any]) -> dict[str, int]:
        """Store rows of several tables in one transaction, each row marked with this run."""
        return self.store.write(
            {t: [{**row(r), "run_id": self.run_id} for r in rows] for t, rows in tables.items()}
        )

    def record(self, stage: Stage, progress: Progress, items: int, tokens: int | None = None) -> None:
        started_at = datetime.fromtimestamp(time.time() - progress.seconds, UTC)
        self.stages.append(StageRow(stage, started_at, progress.seconds, items, tokens))

    def loaded(self, stage: Stage) -> bool:
        return any(row.stage == stage for row in self.stages)

    def load(self, stage: Stage, load: Callable[[], Any]) -> None:
        """Load a model before its stage, so that its time is not counted as generation."""
        progress = Progress(stage.replace("_", " "), 1, self.logger)
        load()
        progress.update(1)
        self.record(stage, progress, 1)

    def fail(self, error: BaseException) -> None:
        reason = redact(str(error))  # errors may name a db or URL setting
        self.store.finish_run(self.run_id, status="failed", finished_at=datetime.now(UTC), error=reason)

    def finish(self, note: str | None) -> dict[str, Any]:
        """Store the final counts; returns the run's summary."""
        self.counts.status = "completed_with_failures" if self.counts.failures else "completed"
        wall = round(time.perf_counter() - self.started, 2)
        counts = asdict(self.counts)
        self.store.finish_run(self.run_id, finished_at=datetime.now(UTC), wall_s=wall, **counts)
        seconds = {f"{r.stage}_s": round(r.seconds, 2) for r in self.stages}
        # Ads written by this run that no one has approved or rejected yet: exports leave them out.
        pending = self.store.fetch(
            "SELECT count(*) AS n FROM v_review_status WHERE run_id = ? AND status = 'pending'", [self.run_id]
        )[0]["n"]
        summary = {"run_id": self.run_id, **counts, **seconds, "wall_s": wall, "awaiting_review": pending}
        return summary | ({"note": note} if note else {})
