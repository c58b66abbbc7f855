"""adforge's orchestration. Importing it turns off the usage reports of Prefect, vLLM and Ray whatever
starts the flow (the `adforge` command, a Prefect worker, a served deployment), before any of them
starts; a value the user set wins."""

import os

TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",  # honoured by Prefect and vLLM among others
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the temporary server a run without one starts
    "VLLM_NO_USAGE_STATS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",  # the local Ray cluster a run with executor = ray starts
}
for name, value in TELEMETRY_OFF.items():
    os.environ.setdefault(name, value)
