"""Where copy chunks and image batches run: one after another in the flow's process, or on a Ray
cluster through Prefect's RayTaskRunner. The flow code is the same for both; each call's outcome
comes back in submission order, so the flow stores every finished chunk before it looks at the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from prefect import Task
from prefect.utilities.annotations import quote

from adforge.flows.settings import Settings

Call = tuple[str, dict[str, Any]]  # task run name, parameters


@dataclass
class Outcome:
    """What one call gave: the task's result, or the exception it ended with after `attempts` tries."""

    result: Any = None
    error: Exception | None = None
    attempts: int = 1


def failed(task: Task, error: Exception) -> Outcome:
    return Outcome(error=error, attempts=1 + (task.retries or 0))


def unvisited(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters Prefect passes on without walking through them looking for futures: thousands of
    jobs per chunk made that walk a third of the flow's own cost."""
    return {name: quote(value) for name, value in parameters.items()}


class Executor(Protocol):
    remote: bool  # True when tasks run in other processes, which load their own models

    def run(self, task: Task, calls: list[Call], gpus: float = 0.0) -> Iterator[Outcome]: ...


class Local:
    """Each call in this process, in order: the models loaded here serve every task."""

    remote = False

    def run(self, task: Task, calls: list[Call], gpus: float = 0.0) -> Iterator[Outcome]:
        for name, parameters in calls:
            try:
                yield Outcome(task.with_options(task_run_name=name)(**unvisited(parameters)))
            except Exception as e:
                yield failed(task, e)


class Ray:
    """Every call submitted at once to Ray; Ray runs as many side by side as the cluster's resources
    allow. Each task reserves `cpus` and `gpus`, and its worker process is never recycled
    (`max_calls=0`), so the engine or pipeline a worker loaded serves all its later tasks."""

    remote = True

    def __init__(self, runner: Any, cpus: float):
        self.runner = runner
        self.cpus = cpus

    def run(self, task: Task, calls: list[Call], gpus: float = 0.0) -> Iterator[Outcome]:
        from prefect_ray.context import remote_options

        with remote_options(num_cpus=self.cpus, num_gpus=gpus, max_calls=0):
            # Not quote()d: prefect-ray's own walk of the parameters turns the annotation into a tuple.
            futures = [self.runner.submit(task.with_options(task_run_name=n), p) for n, p in calls]
        for i, future in enumerate(futures):
            futures[i] = None  # a result is not kept once the flow has stored it
            try:
                yield Outcome(future.result())
            except Exception as e:
                yield failed(task, e)


@contextmanager
def executor(s: Settings) -> Iterator[Executor]:
    """The executor the settings name; a Ray cluster is joined (or started) for the block."""
    if s.executor == "local":
        yield Local()
        return
    if s.executor != "ray":
        raise ValueError(f"executor: expected local or ray, got {s.executor!r}")
    from prefect_ray import RayTaskRunner

    # The workers import the installed adforge package; log lines of the workers reach the driver.
    runner = RayTaskRunner(address=s.ray_address or None, init_kwargs={"log_to_driver": not s.quiet})
    with runner:
        yield Ray(runner, s.ray_cpus_per_task)
