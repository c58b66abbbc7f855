"""What a flow run started through the Prefect API may change. Anyone who reaches the API can start a
deployment's run with other parameters; settings such as `db`, `artifacts` or `text_generator` (which
imports a module) must stay what the deployment says. A run keeps its deployment's settings except the
ones the deployment lists in its `overridable` parameter."""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext

from adforge.flows.redaction import refuse_secrets, revealed

# Settings that change what is written, never where it goes or what code runs.
OVERRIDABLE = ("seed", "temperature", "top_p", "copy_attempts", "copy_candidates", "quiet", "incremental")


def run_settings(settings: dict[str, Any] | None, overridable: list[str] | None) -> dict[str, Any]:
    """The settings this flow run may use: as given, or in a deployment's run the deployment's settings
    with only its overridable ones changed; anything else is a ValueError naming what was changed."""
    given = revealed(settings or {})
    context = FlowRunContext.get()
    this_run = context.flow_run if context else None
    if this_run is None or this_run.deployment_id is None:
        return given
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(this_run.deployment_id)
    where = f"deployment {deployment.name}"
    for name, value in (this_run.job_variables or {}).items():  # `env` could set ADFORGE_* variables
        if (deployment.job_variables or {}).get(name) != value:
            raise ValueError(f"job variable {name}: a run of {where} may not set its own")
    deployed = deployment.parameters
    if overridable != deployed.get("overridable"):
        raise ValueError(f"overridable: a run of {where} may not change which settings it may change")
    base = deployed.get("settings") or {}
    refuse_secrets(base, f"in the parameters of {where}")
    allowed = OVERRIDABLE if overridable is None else overridable
    for name, value in given.items():
        if name not in allowed and (name not in base or base[name] != value):
            raise ValueError(
                f"settings.{name}: a run of {where} may not change it (overridable: {', '.join(allowed)})"
            )
    return base | given
