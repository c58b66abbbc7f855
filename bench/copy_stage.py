"""Copy stage against its ceilings, on the same prompts and sampling settings:
(a) the pipeline's copy task, (b) a bare vLLM `llm.chat`, (c) transformers `generate` batched with
left padding, (d) transformers one prompt at a time. Output tokens per second and their ratios.

(a) runs one sample per request (copy_attempts=1) so that it does exactly the work of (b); (a) and
(b) use the same structured output grammar, (c) and (d) generate free text (transformers has no
grammar), with the same temperature, top_p and max_tokens."""

from __future__ import annotations

import argparse
from dataclasses import replace

from bench.common import sample_jobs, save, timed


def pipeline_copy(jobs, engine, sampling) -> int:
    from adforge.tasks.copy import generate_copy

    return generate_copy.fn(jobs, engine, replace(sampling, attempts=1)).output_tokens


def bare_vllm(llm, jobs, sampling) -> int:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from adforge.tasks.rules import grammar_schema

    params = [
        SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=job.seed,
            structured_outputs=StructuredOutputsParams(
                json=grammar_schema(job.channel, job.rules.brand, job.rules.language)
            ),
        )
        for job in jobs
    ]
    outputs = llm.chat([job.messages for job in jobs], sampling_params=params, use_tqdm=False)
    return sum(len(o.outputs[0].token_ids) for o in outputs)


def transformers_generate(model, tokenizer, jobs, sampling, batch_size: int) -> int:
    import torch

    tokens = 0
    for i in range(0, len(jobs), batch_size):
        texts = [
            tokenizer.apply_chat_template(j.messages, tokenize=False, add_generation_prompt=True)
            for j in jobs[i : i + batch_size]
        ]
        inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(jobs[i].seed)
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_new_tokens=sampling.max_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[:, inputs["input_ids"].shape[1] :]
        # Tokens up to and including the first end-of-sequence token; the rest is padding.
        ended = (new == tokenizer.eos_token_id).int()
        lengths = torch.where(ended.any(1), ended.argmax(1) + 1, torch.tensor(new.shape[1]))
        tokens += int(lengths.sum())
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=64, help="prompts for (a), (b) and (c)")
    parser.add_argument("--batched", type=int, help="prompts for (c) (default: --requests)")
    parser.add_argument("--single", type=int, default=8, help="prompts for (d), one at a time")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts per transformers generate call")
    parser.add_argument("--text-model", help="model name or path (default: the settings' text_model)")
    args = parser.parse_args()

    from adforge.flows.settings import load_settings
    from adforge.tasks.generation import text_generator

    settings = load_settings(overrides={"text_model": args.text_model})
    engine, params = settings.engine(), settings.sampling()
    jobs = sample_jobs(args.requests, settings)
    with timed() as load:
        llm = text_generator(engine).llm  # the engine inside the vLLM generator: one for (a) and (b)
    # Warm-up on all the prompts, one token each: every grammar is compiled before either timed run.
    bare_vllm(llm, jobs, replace(params, max_tokens=1))
    rates = {}
    # Each timed run starts from an empty prefix cache, so neither reuses the other's prefills.
    llm.reset_prefix_cache()
    with timed() as t:
        tokens = bare_vllm(llm, jobs, params)
    rates["b"] = (tokens, t["s"])
    llm.reset_prefix_cache()
    with timed() as t:
        tokens = pipeline_copy(jobs, engine, params)
    rates["a"] = (tokens, t["s"])

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = settings.text_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    dtype = torch.float32 if settings.dtype == "float32" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
    with timed() as t:
        tokens = transformers_generate(model, tokenizer, jobs[: args.batched], params, args.batch_size)
    rates["c"] = (tokens, t["s"])
    with timed() as t:
        tokens = transformers_generate(model, tokenizer, jobs[: args.single], params, 1)
    rates["d"] = (tokens, t["s"])

    tps = {k: tokens / seconds for k, (tokens, seconds) in rates.items()}
    save(
        "copy_stage",
        {
            "model": settings.text_model,
            "requests": args.requests,
            "batched_requests": min(args.batched or args.requests, args.requests),
            "single_requests": args.single,
            "engine_load_s": round(load["s"], 1),
            "runs": {
                k: {"output_tokens": n, "seconds": round(s, 2), "tokens_per_s": round(tps[k], 1)}
                for k, (n, s) in rates.items()
            },
            "ratios": {
                "a/b": round(tps["a"] / tps["b"], 3),
                "b/c": round(tps["b"] / tps["c"], 2),
                "b/d": round(tps["b"] / tps["d"], 2),
            },
            "targets": {"a/b": ">= 0.90", "b/c": ">= 2.0"},
        },
    )


if __name__ == "__main__":
    main()
