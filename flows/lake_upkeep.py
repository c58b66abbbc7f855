"""The DuckLake's upkeep as a Prefect flow, for a schedule (deploy/prefect.yaml: adforge-lake-upkeep,
weekly): storage/maintenance.py's `maintain` on the lake of the db setting, its before/after table
published as a Markdown artifact. With a DuckDB file (which needs no upkeep) a run only says so."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from adforge.flows.overrides import run_settings
from adforge.flows.redaction import redact
from adforge.flows.settings import load_settings
from adforge.storage.maintenance import DEFAULT_GRACE_MINUTES, NotALake, maintain
from adforge.tasks.untrusted import markdown


@flow(name="maintain_lake")
def maintain_lake(
    settings: dict[str, Any] | None = None, overridable: list[str] | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Merge the lake's small files, expire its snapshots older than lake_retention_days and delete the
    files no snapshot uses (after an hour unused); with dry_run, only report. In a deployment's run only
    the settings named in `overridable` may differ from the deployment's (db never should)."""
    s = load_settings(overrides=run_settings(settings, overridable))
    logger = get_run_logger()
    try:
        upkeep = maintain(s.db, s.lake_retention_days, dry_run, DEFAULT_GRACE_MINUTES, s.db_wait_s)
    except NotALake as e:  # a schedule left on for a DuckDB file: nothing to do, and the run says so
        logger.warning(redact(str(e)))
        create_markdown_artifact(f"Nothing to do: {markdown(redact(str(e)))}", key="lake-upkeep")
        return {"skipped": redact(str(e))}
    logger.info(upkeep.summary())
    create_markdown_artifact(
        upkeep.markdown(redact(s.db)), key="lake-upkeep", description="Files, bytes and snapshots of the lake"
    )
    return upkeep.to_dict()
