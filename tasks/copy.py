"""Write ad copy: chunks of chat prompts to the text generator, structured output, every rule checked."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from itertools import groupby, product
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from adforge.storage.faults import fault_point
from adforge.tasks.ad_sets import SOURCES, choose_set, limits_refusal, offered, read_extras
from adforge.tasks.brand_kits import BrandKit, voice
from adforge.tasks.channels import CopyFields
from adforge.tasks.domain import (
    AssetRow,
    BrandRules,
    Brief,
    CopyJob,
    CopyRow,
    Failure,
    FailureKind,
    Group,
    Segment,
    failure,
)
from adforge.tasks.generation import (
    Completion,
    EngineOptions,
    Sampling,
    TextGenerator,
    TextRequest,
    drop,
    loaded,
    text_generator,
)
from adforge.tasks.ids import derive_seed, make_id
from adforge.tasks.locales import language_of
from adforge.tasks.progress import Progress, run_logger
from adforge.tasks.prompts import copy_messages
from adforge.tasks.rules import (
    check_copy,
    check_value,
    copy_text,
    distinct,
    grammar_schema,
    language_margins,
    language_text,
    similarity,
)
from adforge.tasks.scoring import Embedder, brief_text, embedder, mmr_pick, readability, scored_text

logger = logging.getLogger(__name__)
FIELDS = tuple(CopyFields.model_fields)  # headline, body, cta, image_prompt


@dataclass
class CopyResult:
    copies: list[CopyRow] = field(default_factory=list)
    assets: list[AssetRow] = field(default_factory=list)  # the platform fields of the copies
    failures: list[Failure] = field(default_factory=list)
    output_tokens: int = 0
    load_s: float | None = None  # seconds this task spent starting the generator, if it had to


def plan_copies(
    briefs: list[Brief], sampling: Sampling, kits: Mapping[str, BrandKit] | None = None
) -> list[CopyJob]:
    """Every (brief, channel, segment, locale, variant) as a job with a deterministic id and seed, in that
    order: the prompts of one brief stay together and share their start (the engine's prefix cache). A
    brand kit's business name and tone notes go into the prompt and the id; a segment's and a locale's
    parts are in the id only where the brief names segments or locales, so other ids are as before."""
    settings = asdict(sampling)
    jobs = []
    for brief in briefs:
        brand_voice = voice((kits or {}).get(brief.brand.strip()))
        segments: list[Segment | None] = [*brief.segments] or [None]
        locales: list[str | None] = [*brief.locales] or [None]
        for channel, segment, locale in product(brief.channels, segments, locales):
            audience = (segment.segment_id, segment.segment_hash) if segment else ()
            market = (locale, brief.locale_banned_words.get(locale, [])) if locale else ()
            rules = locale_rules(brief, locale)
            for variant in range(1, brief.variants + 1):
                parts = (brief.brief_hash, channel, variant, settings, *brand_voice, *audience, *market)
                jobs.append(CopyJob(
                    copy_id=make_id("copy", *parts),
                    brief_id=brief.brief_id,
                    brief_hash=brief.brief_hash,
                    channel=channel,
                    variant=variant,
                    seed=derive_seed(sampling.seed, brief.brief_id, channel, variant, *audience[:1],
                                     *market[:1]),
                    messages=copy_messages(brief, channel, variant, brand_voice, segment, locale),
                    rules=rules,
                    brief_text=brief_text(brief.product, segment.description if segment else brief.audience,
                                          brief.key_message),
                    segment_id=segment.segment_id if segment else None,
                    segment_hash=segment.segment_hash if segment else None,
                    locale=locale or brief.language,
                ))  # fmt: skip
    return jobs


def locale_rules(brief: Brief, locale: str | None) -> BrandRules:
    """The brief's rules for its ads in one locale: that locale's language and banned words."""
    if locale is None:
        return brief.rules
    banned = (*brief.banned_words, *brief.locale_banned_words.get(locale, []))
    return replace(brief.rules, language=language_of(locale), banned_words=banned)


def jobs_per_brief(brief: Brief) -> int:
    """How many jobs plan_copies makes for a brief."""
    return len(brief.channels) * max(1, len(brief.segments)) * max(1, len(brief.locales)) * brief.variants


def brief_slices(briefs: list[Brief], size: int) -> Iterator[list[Brief]]:
    """Consecutive briefs planning about `size` jobs together (a brief is never split), so that a run
    plans and writes one slice at a time: its memory holds one slice's jobs and prompts, not the run's."""
    part: list[Brief] = []
    jobs = 0
    for brief in briefs:
        part.append(brief)
        jobs += jobs_per_brief(brief)
        if jobs >= size:
            yield part
            part, jobs = [], 0
    if part:
        yield part


def copy_chunks(jobs: list[CopyJob], size: int) -> list[list[CopyJob]]:
    """Chunks of about `size` jobs that keep the variants of one brief and channel together."""
    parts: list[list[CopyJob]] = []
    for _, group in groupby(jobs, key=lambda j: j.group):
        members = list(group)
        if not parts or len(parts[-1]) + len(members) > size:
            parts.append([])
        parts[-1].extend(members)
    return parts


def with_siblings(jobs: list[CopyJob], stored: list[dict[str, Any]]) -> list[CopyJob]:
    """Give each job the stored variants of its brief and channel, which a new variant must differ from."""
    texts: dict[tuple, list[str]] = defaultdict(list)
    for c in stored:
        texts[c["brief_hash"], c["segment_id"], c["locale"], c["channel"]].append(copy_text(c))
    for job in jobs:
        job.siblings = list(texts[job.group])
    return jobs


def read_output(out: Completion) -> tuple[dict[str, str] | None, str]:
    """The copy fields of an output, or None and why it has none."""
    if out.finish_reason == "length":
        return None, "output: cut off at max_tokens"
    try:
        raw = json.loads(out.text)
    except json.JSONDecodeError as e:
        return None, f"output: invalid JSON ({e.msg})"
    if not isinstance(raw, dict) or not all(isinstance(raw.get(f), str) for f in FIELDS):
        return None, f"output: expected the string fields {', '.join(FIELDS)}"
    return {f: raw[f] for f in FIELDS}, ""


def check_fields(
    job: CopyJob, fields: dict[str, str], siblings: list[str], sampling: Sampling,
    language: tuple[str, float] | None = None,
) -> tuple[dict | None, str]:  # fmt: skip
    """The fields with their check results, or None and the first rule they break; `language` is the
    output's language identified beforehand (a batch at a time is faster)."""
    languages = frozenset(sampling.languages.split(","))
    # Limits are checked on the text as written: a field that ran past its limit was cut, not finished.
    checks, reason, score = check_copy(
        fields,
        job.channel,
        job.rules,
        languages,
        siblings,
        sampling.max_similarity,
        language,
        job.prompt_text,
    )
    if reason:
        return None, reason
    trimmed = {f: v.strip() for f, v in fields.items()}  # the one repair that is always safe
    checks["whitespace"] = "trimmed" if trimmed != fields else "passed"
    return {**trimmed, "checks": checks, "similarity": score}, ""


def seed_for(job: CopyJob, attempt: int) -> int:
    return job.seed if attempt == 0 else derive_seed(job.seed, "retry", attempt)


def copy_row(job: CopyJob, pick: Candidate, attempt: int, sampling: Sampling, settings: str) -> CopyRow:
    """The stored row of an accepted candidate; `settings` is the JSON of the sampling that made it."""
    fields = dict(pick.fields)
    checks = fields.pop("checks") | ({"refused_samples": job.reasons} if job.reasons else {})
    return CopyRow(
        copy_id=job.copy_id, brief_id=job.brief_id, brief_hash=job.brief_hash, channel=job.channel,
        variant=job.variant, **fields, checks=json.dumps(checks), attempts=attempt + 1,
        candidates=job.candidates, seed=seed_for(job, attempt), text_model=sampling.model, sampling=settings,
        prompt=json.dumps(job.messages, ensure_ascii=False), prompt_tokens=pick.out.prompt_tokens,
        output_tokens=pick.out.output_tokens, relevance=round(pick.relevance, 4),
        readability=readability(scored_text(fields), job.rules.language), score_model=sampling.score_model,
        embedding=pick.embedding.tolist(), segment_id=job.segment_id, segment_hash=job.segment_hash,
        locale=job.locale,
    )  # fmt: skip


@dataclass
class Candidate:
    """A completion that passed every rule, with its scores."""

    fields: dict[str, Any]  # the copy fields, "checks" and "similarity"
    out: Completion
    relevance: float
    embedding: np.ndarray
    assets: dict[str, list[str]] = field(default_factory=dict)  # platform field → its values


@task(name="generate-copy", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def generate_copy(jobs: list[CopyJob], engine: EngineOptions, sampling: Sampling) -> CopyResult:
    """Write copy for a chunk of jobs: `sampling.candidates` completions per job in one pass, the best
    that passes every rule kept; a job none of whose candidates passes is sampled again with a new seed."""
    result = CopyResult()
    jobs = _writable(jobs, sampling, result)
    if not jobs:
        return result
    # Module state only through functions: Ray ships this task's own globals by value.
    if not loaded(engine):
        started = time.perf_counter()
        text_generator(engine)
        embedder(engine.score_model)
        result.load_s = time.perf_counter() - started
    generator, embed = text_generator(engine), embedder(engine.score_model)
    pending = _fit_context(generator, jobs, engine.max_model_len - sampling.max_tokens, result)
    # Accepted variants per brief and channel, in the order accepted: what a new variant must differ from.
    accepted = {job.group: list(job.siblings) for job in pending}
    stored = embed([text for texts in accepted.values() for text in texts])
    vectors = dict(zip(accepted, _split(stored, [len(texts) for texts in accepted.values()]), strict=True))
    # Counted per candidate, as vLLM reports them.
    progress = Progress("copy samples", len(pending) * sampling.candidates, run_logger())
    settings = json.dumps(asdict(sampling))  # stored with every copy
    for attempt in range(sampling.attempts):
        if not pending:
            break
        requests = [TextRequest(j.messages, seed_for(j, attempt), _grammar(j)) for j in pending]
        fault_point("generate-copy")
        try:
            with progress.heartbeat():
                outputs = generator.generate(requests, sampling, progress.update)
        except Exception:
            drop(engine)  # a dead engine stays dead: the task's retry starts a fresh one
            raise
        result.output_tokens += sum(c.output_tokens for candidates in outputs for c in candidates)
        passing = _passing(pending, outputs, sampling)
        picks = _choose(pending, passing, accepted, vectors, sampling, embed)
        retry = []
        for job, pick in zip(pending, picks, strict=True):
            if pick is None:
                retry.append(job)
            else:
                result.copies.append(copy_row(job, pick, attempt, sampling, settings))
                result.assets += asset_rows(job.copy_id, pick.assets)
        pending = retry
        progress.total += len(retry) * sampling.candidates if attempt + 1 < sampling.attempts else 0
    result.failures += [failure(j, FailureKind.RULE, refusal(j.reasons), len(j.reasons)) for j in pending]
    return result


def _grammar(job: CopyJob) -> dict[str, Any]:
    return grammar_schema(job.channel, job.rules.brand, job.rules.language)


def _passing(
    jobs: list[CopyJob], outputs: list[list[Completion]], sampling: Sampling
) -> list[list[tuple[dict[str, Any], Completion]]]:
    """Per job, its candidates that pass every rule but distinctness (which depends on the choice);
    each refused candidate's reason is added to its job's."""
    read = [[read_output(c) for c in candidates] for candidates in outputs]
    flat_jobs = [job for job, candidates in zip(jobs, read, strict=True) for _ in candidates]
    languages = iter(_languages(flat_jobs, [fields for candidates in read for fields, _ in candidates]))
    passing = []
    for job, candidates, completions in zip(jobs, read, outputs, strict=True):
        job.candidates += len(completions)
        pairs = zip(candidates, completions, strict=True)
        job.offers = [(f, read_extras(c.text, job.channel)) for (f, _), c in pairs if f]
        ok = []
        for (fields, reason), out in zip(candidates, completions, strict=True):
            language = next(languages)
            if fields is not None:
                fields, reason = check_fields(job, fields, [], sampling, language)
            if fields is None:
                job.reasons.append(reason)
            else:
                ok.append((fields, out))
        passing.append(ok)
    return passing


def _choose(
    jobs: list[CopyJob], passing: list[list[tuple[dict[str, Any], Completion]]],
    accepted: dict[Group, list[str]], vectors: dict[Group, np.ndarray],
    sampling: Sampling, embed: Embedder,
) -> list[Candidate | None]:  # fmt: skip
    """Per job, the passing candidate with the highest marginal relevance (relevance to the brief, less
    similarity to its brief and channel's variants chosen so far) that is distinct from them, or None.
    Jobs are taken in order, so variants chosen earlier in the chunk count for the later ones."""
    texts = [scored_text(fields) for ok in passing for fields, _ in ok]
    briefs = sorted({job.brief_text for job, ok in zip(jobs, passing, strict=True) if ok})
    embedded = embed(texts + briefs)
    candidates = iter(_split(embedded[: len(texts)], [len(ok) for ok in passing]))
    brief_vectors = dict(zip(briefs, embedded[len(texts) :], strict=True))
    picks: list[Candidate | None] = []
    for job, ok in zip(jobs, passing, strict=True):
        found = next(candidates)
        relevance = found @ brief_vectors[job.brief_text] if ok else np.zeros(0)
        pick = None
        for i in mmr_pick(relevance.tolist(), found, vectors[job.group]):
            fields = ok[i][0]
            outcome, score = distinct(fields, accepted[job.group], sampling.max_similarity)
            if outcome.startswith("failed"):
                job.reasons.append(f"distinct: {outcome[len('failed: ') :]}")
                continue
            assets, reason = platform_sets(
                job, fields, ok[i][1], brief_vectors[job.brief_text], embed, sampling
            )
            if reason:
                job.reasons.append(reason)
                continue
            fields = {**fields, "checks": {**fields["checks"], "distinct": outcome, "platform_set": "passed"},
                      "similarity": score}  # fmt: skip
            pick = Candidate(fields, ok[i][1], float(relevance[i]), found[i], assets)
            accepted[job.group].append(copy_text(fields))
            vectors[job.group] = np.vstack([vectors[job.group], found[i : i + 1]])
            break
        picks.append(pick)
    return picks


def asset_rows(copy_id: str, assets: dict[str, list[str]]) -> list[AssetRow]:
    return [
        AssetRow(copy_id, name, i, text)
        for name, values in assets.items()
        for i, text in enumerate(values, 1)
    ]


def platform_sets(
    job: CopyJob,
    fields: dict[str, Any],
    out: Completion,
    brief: np.ndarray,
    embed: Embedder,
    sampling: Sampling,
) -> tuple[dict[str, list[str]], str]:
    """The values of each platform field of the ad whose copy fields are `fields`, chosen from this
    attempt's candidates (job.offers), or why the ad cannot have them."""
    languages = frozenset(sampling.languages.split(","))
    picked = (fields, read_extras(out.text, job.channel))
    key = (fields["headline"].strip(), fields["body"].strip())
    others = [o for o in job.offers if (o[0]["headline"].strip(), o[0]["body"].strip()) != key]
    assets = {}
    for source in SOURCES[job.channel]:
        texts = offered(job.channel, source, picked, others)
        refused = [limits_refusal(job.channel, source, t)
                   or check_value(t, job.rules, languages, job.prompt_text) for t in texts]  # fmt: skip
        values, reason = choose_set(job.channel, source, texts, refused, brief, embed, similarity,
                                    sampling.max_similarity)  # fmt: skip
        if reason:
            return {}, reason
        assets[source.field] = values
    return assets, ""


def _split(rows: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Consecutive blocks of rows, one per size (embeddings of several jobs, from one batch)."""
    return np.split(rows, np.cumsum(sizes)[:-1]) if sizes else []


def _languages(jobs: list[CopyJob], outputs: list[dict[str, str] | None]) -> list[tuple[str, float] | None]:
    """Top language and margin to the wanted one for every readable output, identified in one batch."""
    pairs = zip(jobs, outputs, strict=True)
    readable = [
        (job.rules.language, language_text(fields, (job.rules.brand, job.rules.product)))
        for job, fields in pairs
        if fields
    ]
    margins = iter(language_margins([text for _, text in readable], [wanted for wanted, _ in readable]))
    return [next(margins) if fields else None for fields in outputs]


def refusal(reasons: list[str]) -> str:
    """The last sample's reason, and how many samples each rule refused when there were several."""
    if len(reasons) == 1:
        return reasons[0]
    kinds = Counter(r.split(":")[0] for r in reasons)
    counts = ", ".join(f"{kind} ×{n}" for kind, n in kinds.items())
    return f"{reasons[-1]} (all {len(reasons)} samples refused: {counts})"


def writes(job: CopyJob, sampling: Sampling) -> bool:
    """Whether the text model writes the language of the job's locale (the text_model_languages setting)."""
    languages = sampling.languages.split(",")
    return "any" in languages or job.rules.language in languages


def _writable(jobs: list[CopyJob], sampling: Sampling, result: CopyResult) -> list[CopyJob]:
    """Jobs in a language the text model writes; the rest become failures, without a model call."""
    writable = []
    for job in jobs:
        if writes(job, sampling):
            writable.append(job)
            continue
        reason = (f"locale {job.locale}: the text model writes {sampling.languages}, not "
                  f"{job.rules.language}; set text_model and text_model_languages to a model that "
                  "does (deploy/gpu.toml)")  # fmt: skip
        result.failures.append(failure(job, FailureKind.LOCALE, reason, 0))
    return writable


def _fit_context(
    generator: TextGenerator, jobs: list[CopyJob], limit: int, result: CopyResult
) -> list[CopyJob]:
    """Jobs whose prompt leaves room for max_tokens; the rest become failures, not engine errors."""
    fitting = []
    for job in jobs:
        n = generator.prompt_tokens(job.messages)
        if n > limit:
            reason = f"prompt is {n} tokens, more than the {limit} that fit"
            result.failures.append(failure(job, FailureKind.PROMPT_TOO_LONG, reason, 0))
        else:
            fitting.append(job)
    return fitting
