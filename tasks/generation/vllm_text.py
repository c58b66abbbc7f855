"""The text generator users run: vLLM's offline engine, chat prompts, structured output."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, cast

from adforge.tasks.generation import Completion, EngineOptions, Sampling, TextRequest

logger = logging.getLogger(__name__)


class VllmText:
    def __init__(self, options: EngineOptions):
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(options.kv_cache_gb))
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if options.engine_in_process else "1"
        # Stats are on for prefix_cache_stats; vLLM's stats line every 10 s only where the variable asks.
        os.environ.setdefault("VLLM_LOG_STATS_INTERVAL", "1e9")
        from vllm import LLM

        logger.info("starting vLLM engine for %s", options.model)
        world = options.tensor_parallel_size * options.pipeline_parallel_size
        revision = options.text_model_revision or None  # empty: the hub's default branch
        self.llm = LLM(
            model=options.model,
            revision=revision,
            tokenizer_revision=revision,
            max_model_len=options.max_model_len,
            max_num_seqs=options.max_num_seqs,
            enforce_eager=options.enforce_eager,
            dtype=cast(Any, options.dtype),
            # vLLM's CPU sampler cannot rewind a seeded generator after a partial prefill.
            enable_chunked_prefill=options.chunked_prefill,
            enable_prefix_caching=options.prefix_caching,
            disable_log_stats=False,  # the LLM class's default (True) leaves no counters to read
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
        self.tokenizer = self.llm.get_tokenizer()

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        text = self.tokenizer.apply_chat_template(
            cast(Any, messages), tokenize=False, add_generation_prompt=True
        )
        return len(self.tokenizer.encode(str(text), add_special_tokens=False))

    def prefix_cache_stats(self) -> tuple[int, int]:
        """Prompt tokens looked up in the prefix cache and tokens found there, since the engine started.
        vLLM's counters live in the process's Prometheus registry: a later engine in the process replaces
        them, so they are this engine's only while it is the process's latest."""
        from vllm.v1.metrics.reader import Counter

        totals = {"vllm:prefix_cache_queries": 0, "vllm:prefix_cache_hits": 0}
        for metric in self.llm.get_metrics():
            if isinstance(metric, Counter) and metric.name in totals:
                totals[metric.name] += int(metric.value)
        return totals["vllm:prefix_cache_queries"], totals["vllm:prefix_cache_hits"]

    def generate(
        self, requests: list[TextRequest], sampling: Sampling, finished: Callable[[int], None]
    ) -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = [
            SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                n=sampling.candidates,  # one prefill, several samples
                seed=r.seed,  # every request has its own: vLLM on CPU ignores seeds in a partly seeded batch
                structured_outputs=StructuredOutputsParams(json=r.schema),
            )
            for r in requests
        ]
        outputs = self.llm.chat(
            [cast(Any, r.messages) for r in requests], sampling_params=params, use_tqdm=_Reporter(finished)
        )
        return [
            [
                Completion(c.text, c.finish_reason, len(o.prompt_token_ids or []), len(c.token_ids))
                for c in o.outputs
            ]
            for o in outputs
        ]


class _Reporter:
    """As much of tqdm as vLLM's offline loop uses, passing finished requests on to a callback."""

    def __init__(self, finished: Callable[[int], None]):
        self.finished = finished
        self.n = 0
        self.postfix = ""

    def __call__(self, iterable: Any = None, **_: Any) -> Any:
        """vLLM wraps the prompts it adds in use_tqdm(prompts), then counts outputs in use_tqdm(total=n)."""
        if iterable is not None:
            return iterable
        self.start = time.perf_counter()
        return self

    @property
    def format_dict(self) -> dict[str, float]:
        return {"elapsed": max(time.perf_counter() - self.start, 1e-9)}

    def update(self, n: int) -> None:
        self.n += n
        self.finished(n)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass
