"""Write ad copy with vLLM's offline engine: chunks of chat prompts, structured output, validated."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from prefect import task
from prefect.cache_policies import NO_CACHE

from storage.faults import fault_point
from tasks.channels import CopyFields
from tasks.ids import derive_seed, make_id
from tasks.prompts import copy_messages
from tasks.rules import BrandRules, check_copy, copy_text, grammar_schema

if TYPE_CHECKING:
    from vllm import LLM

logger = logging.getLogger(__name__)
FIELDS = tuple(CopyFields.model_fields)  # headline, body, cta, image_prompt


@dataclass(frozen=True)
class EngineOptions:
    """How the text engine is started; one engine per distinct value, per process."""

    model: str
    max_model_len: int = 2048
    max_num_seqs: int = 64
    enforce_eager: bool = True
    dtype: str = "float32"
    chunked_prefill: bool = False
    max_num_batched_tokens: int = 8192
    engine_in_process: bool = True
    kv_cache_gb: int = 2
    gpu_memory_utilization: float = 0.6
    tensor_parallel_size: int = 1
    structured_output_backend: str = "guidance"
    pipeline_parallel_size: int = 1


@dataclass(frozen=True)
class Sampling:
    """Everything that decides what copy comes out; part of every copy_id."""

    model: str  # the name as configured, not the local path, so ids survive moving the cache
    seed: int = 0
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 320
    attempts: int = 6
    max_similarity: float = 0.8  # variants of one brief and channel more alike than this are resampled
    languages: str = "en"  # languages the text model writes; the language check runs for these


@dataclass
class CopyJob:
    """One copy variant to write: a brief on a channel."""

    copy_id: str
    brief_id: str
    brief_hash: str
    channel: str
    variant: int
    seed: int
    messages: list[Any]  # chat messages: {"role": ..., "content": ...}
    rules: BrandRules
    siblings: list[str] = field(default_factory=list)  # stored variants of the same brief and channel
    reasons: list[str] = field(default_factory=list)

    @property
    def group(self) -> tuple[str, str]:
        return self.brief_hash, self.channel


@dataclass
class CopyResult:
    copies: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    output_tokens: int = 0
    load_s: float | None = None  # seconds this task spent starting the engine, if it had to


_engines: dict[EngineOptions, LLM] = {}
_engines_lock = threading.Lock()


def get_engine(options: EngineOptions) -> LLM:
    """The process's engine for these options, started on first use and kept loaded."""
    with _engines_lock:
        if options not in _engines:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(options.kv_cache_gb))
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if options.engine_in_process else "1"
            from vllm import LLM

            logger.info("starting vLLM engine for %s", options.model)
            world = options.tensor_parallel_size * options.pipeline_parallel_size
            _engines[options] = LLM(
                model=options.model,
                max_model_len=options.max_model_len,
                max_num_seqs=options.max_num_seqs,
                enforce_eager=options.enforce_eager,
                dtype=cast(Any, options.dtype),
                # vLLM's CPU sampler cannot rewind a seeded generator after a partial prefill.
                enable_chunked_prefill=options.chunked_prefill,
                max_num_batched_tokens=max(options.max_num_batched_tokens, options.max_model_len),
                gpu_memory_utilization=options.gpu_memory_utilization,
                tensor_parallel_size=options.tensor_parallel_size,
                pipeline_parallel_size=options.pipeline_parallel_size,
                # Several GPUs: worker processes on the GPUs this process holds (in a Ray task, those
                # Ray assigned to it), never Ray actors of vLLM's own.
                distributed_executor_backend="mp" if world > 1 else None,
                structured_outputs_config={"backend": options.structured_output_backend},
                seed=0,
            )
        return _engines[options]


def drop_engine(options: EngineOptions) -> None:
    with _engines_lock:
        _engines.pop(options, None)


def engine_loaded(options: EngineOptions) -> bool:
    return options in _engines


def plan_copies(briefs: list[dict[str, Any]], sampling: Sampling) -> list[CopyJob]:
    """Every (brief, channel, variant) as a job with a deterministic id and seed."""
    settings = asdict(sampling)
    return [
        CopyJob(
            copy_id=make_id("copy", brief["brief_hash"], channel, variant, settings),
            brief_id=brief["brief_id"],
            brief_hash=brief["brief_hash"],
            channel=channel,
            variant=variant,
            seed=derive_seed(sampling.seed, brief["brief_id"], channel, variant),
            messages=copy_messages(brief, channel, variant),
            rules=BrandRules(brief["brand"], tuple(brief["banned_words"]), brief["language"]),
        )
        for brief in briefs
        for channel in brief["channels"]
        for variant in range(1, brief["variants"] + 1)
    ]


def parse_copy(
    job: CopyJob, text: str, finish_reason: str | None, siblings: list[str], sampling: Sampling
) -> tuple[dict | None, str]:
    """Copy fields with their check results, or None and the reason the output was refused."""
    if finish_reason == "length":
        return None, "output cut off at max_tokens"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        return None, f"output: invalid JSON ({e.msg})"
    if not isinstance(raw, dict) or not all(isinstance(raw.get(f), str) for f in FIELDS):
        return None, f"output: expected the string fields {', '.join(FIELDS)}"
    fields = {f: raw[f] for f in FIELDS}
    languages = frozenset(sampling.languages.split(","))
    # Limits are checked on the text as written: a field that ran past its limit was cut, not finished.
    checks, reason, score = check_copy(
        fields, job.channel, job.rules, languages, siblings, sampling.max_similarity
    )
    if reason:
        return None, reason
    trimmed = {f: v.strip() for f, v in fields.items()}  # the one repair that is always safe
    checks["whitespace"] = "trimmed" if trimmed != fields else "passed"
    return {**trimmed, "checks": checks, "similarity": score}, ""


def seed_for(job: CopyJob, attempt: int) -> int:
    return job.seed if attempt == 0 else derive_seed(job.seed, "retry", attempt)


@task(name="generate-copy", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def generate_copy(jobs: list[CopyJob], engine: EngineOptions, sampling: Sampling) -> CopyResult:
    """Write copy for a chunk of jobs; refused outputs are retried with new seeds, then recorded."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    result = CopyResult()
    # Module state only through functions: Ray ships this task's own globals by value.
    if not engine_loaded(engine):
        started = time.perf_counter()
        get_engine(engine)
        result.load_s = time.perf_counter() - started
    llm = get_engine(engine)
    pending = _fit_context(llm, jobs, engine.max_model_len - sampling.max_tokens, result)
    # Accepted variants per brief and channel, in the order accepted: what a new variant must differ from.
    accepted: dict[tuple[str, str], list[str]] = defaultdict(list)
    for job in pending:
        if job.group not in accepted:
            accepted[job.group] = list(job.siblings)
    for attempt in range(sampling.attempts):
        if not pending:
            break
        params = [
            SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                seed=seed_for(job, attempt),
                structured_outputs=StructuredOutputsParams(json=grammar_schema(job.channel, job.rules.brand)),
            )
            for job in pending
        ]
        fault_point("generate-copy")
        try:
            outputs = llm.chat([job.messages for job in pending], sampling_params=params, use_tqdm=False)
        except Exception:
            # A dead engine stays dead: drop it so that the task's retry starts a fresh one.
            drop_engine(engine)
            raise
        retry = []
        for job, out in zip(pending, outputs, strict=True):
            completion = out.outputs[0]
            result.output_tokens += len(completion.token_ids)
            fields, reason = parse_copy(
                job, completion.text, completion.finish_reason, accepted[job.group], sampling
            )
            if fields is None:
                job.reasons.append(reason)
                retry.append(job)
                continue
            accepted[job.group].append(copy_text(fields))
            checks = fields.pop("checks") | ({"refused_samples": job.reasons} if job.reasons else {})
            result.copies.append(
                {
                    "copy_id": job.copy_id,
                    "brief_id": job.brief_id,
                    "brief_hash": job.brief_hash,
                    "channel": job.channel,
                    "variant": job.variant,
                    **fields,
                    "checks": json.dumps(checks),
                    "attempts": attempt + 1,
                    "seed": seed_for(job, attempt),
                    "text_model": sampling.model,
                    "sampling": json.dumps(asdict(sampling)),
                    "prompt": json.dumps(job.messages, ensure_ascii=False),
                    "prompt_tokens": len(out.prompt_token_ids or []),
                    "output_tokens": len(completion.token_ids),
                }
            )
        pending = retry
    result.failures += [failure(job, refusal(job.reasons), len(job.reasons)) for job in pending]
    return result


def refusal(reasons: list[str]) -> str:
    """The last sample's reason, and how many samples each rule refused when there were several."""
    if len(reasons) == 1:
        return reasons[0]
    kinds = Counter(r.split(":")[0] for r in reasons)
    counts = ", ".join(f"{kind} ×{n}" for kind, n in kinds.items())
    return f"{reasons[-1]} (all {len(reasons)} samples refused: {counts})"


def failure(job: CopyJob, reason: str, attempts: int) -> dict[str, Any]:
    """A failures row for a copy job."""
    return {
        "stage": "copy",
        "item_id": job.copy_id,
        "brief_id": job.brief_id,
        "channel": job.channel,
        "variant": job.variant,
        "reason": reason,
        "attempts": attempts,
    }


def _fit_context(llm: LLM, jobs: list[CopyJob], limit: int, result: CopyResult) -> list[CopyJob]:
    """Jobs whose prompt leaves room for max_tokens; the rest become failures, not engine errors."""
    tokenizer = llm.get_tokenizer()
    fitting = []
    for job in jobs:
        text = tokenizer.apply_chat_template(job.messages, tokenize=False, add_generation_prompt=True)
        n = len(tokenizer.encode(str(text), add_special_tokens=False))
        if n > limit:
            result.failures.append(failure(job, f"prompt is {n} tokens, more than the {limit} that fit", 0))
        else:
            fitting.append(job)
    return fitting
