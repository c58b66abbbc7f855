"""Deterministic stand-ins behind the generator interfaces, for tests of planning, retries, failures,
resume and storage: no model is loaded. Selected like the real ones, by the `text_generator` and
`image_generator` settings ("fakes:FakeText", "fakes:FakeImages"; pytest puts tests/ on the path)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from PIL import Image

from adforge.tasks.channels import CHANNELS
from adforge.tasks.generation import Completion, EngineOptions, Sampling, TextRequest

TEXT = "fakes:FakeText"
IMAGES = "fakes:FakeImages"
# Two candidates per copy: the choice between them is exercised at half the default's rule checks.
FAKES = {"text_generator": TEXT, "image_generator": IMAGES, "score_model": "hashing", "copy_candidates": 2}
CLAUSES = (
    "makes mornings easy for everyone who tries it today.",
    "is built for people on the move who want more from their day.",
    "keeps every promise it makes, season after season.",
    "turns a small habit into a daily win you can feel.",
    "was made with care by a small team that loves good things.",
)
HEADLINES = ("made for you", "a little better", "your new habit", "worth a look", "good every day")
LIGHTS = ("morning", "evening", "window", "golden", "studio")
MARKER = "Brand: "
# Copy in the language of a prompt's locale, where the fake knows it: (headlines, clauses).
LOCAL = {
    "es": (("hecho para ti", "un poco mejor", "tu nuevo hábito", "vale la pena", "bueno cada día"),
           ("hace que las mañanas sean fáciles para todos los que lo prueban hoy.",
            "está pensado para las personas que siempre van con prisa y quieren más de su día.",
            "cumple cada promesa que hace, temporada tras temporada.",
            "convierte un pequeño hábito en una victoria diaria que se nota.",
            "fue hecho con cariño por un equipo pequeño que ama las cosas buenas.")),
    "ja": (("あなたのために", "毎日をもっと良く", "新しい習慣", "一度お試しを", "毎日おいしい"),
           ("忙しい朝をもっと楽にしてくれます。", "毎日の小さな習慣が大きな喜びに変わります。",
            "季節が変わっても約束を守り続けます。", "小さなチームが心を込めて作りました。",
            "移動の多い毎日にぴったりです。")),
}  # fmt: skip


class FakeText:
    """Writes copy that passes every rule, different for each variant, seed and candidate: headline and
    body name the brand, the CTA is the first button the grammar allows."""

    def __init__(self, options: EngineOptions):
        self.options = options

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"]) for m in messages) // 4

    def generate(
        self, requests: list[TextRequest], sampling: Sampling, finished: Callable[[int], None]
    ) -> list[list[Completion]]:
        outputs = [[self._one(r, k) for k in range(sampling.candidates)] for r in requests]
        finished(len(outputs) * sampling.candidates)  # as vLLM counts: every completion
        return outputs

    def _one(self, request: TextRequest, candidate: int) -> Completion:
        user = request.messages[-1]["content"]
        brand = next(line[len(MARKER) :] for line in user.splitlines() if line.startswith(MARKER))
        variant = int(re.search(r"This is variant (\d+)", user).group(1))
        channel = CHANNELS[re.search(r"Channel: (\w+)", user).group(1)]
        first = variant + request.seed + candidate
        locale = re.search(r"^Locale: ([a-z]+)", user, re.MULTILINE)
        headlines, sentences = LOCAL.get(locale.group(1) if locale else "", (HEADLINES, CLAUSES))
        clauses = [sentences[(first + k) % len(sentences)] for k in range(3)]
        copy = {
            "headline": f"{brand}: {headlines[first % len(headlines)]}"[: channel.headline_max],
            "body": f"{brand} {' '.join(clauses)}"[: channel.body_max],
            "cta": request.schema["properties"]["cta"]["enum"][0],
            "image_prompt": f"a still life of {brand} on a table in soft {LIGHTS[first % len(LIGHTS)]} light",
        }
        for key, spec in request.schema["properties"].items():  # a platform's further values
            if key not in copy:
                texts = [_extra(spec.get("items", spec), first + k) for k in range(spec.get("minItems", 1))]
                copy[key] = texts if spec["type"] == "array" else texts[0]
        text = json.dumps(copy)
        return Completion(text, "stop", self.prompt_tokens(request.messages), len(text) // 4)


def _extra(spec: dict, n: int) -> str:
    """A further value within the schema's lengths: a headline phrase where it fits, else clauses."""
    short = f"{HEADLINES[n % len(HEADLINES)]}, {LIGHTS[n // len(HEADLINES) % len(LIGHTS)]} edition"
    text = short if len(short) >= spec["minLength"] else f"{short}: {CLAUSES[n % len(CLAUSES)]}"
    return text[: spec["maxLength"] - 1]


class FakeImages:
    """A plain image per prompt, its colour taken from the seed."""

    def __init__(self, path: str, device: str, revision: str = ""):
        self.path = path

    def generate(
        self, prompts: list[str], seeds: list[int], width: int, height: int, steps: int, guidance_scale: float
    ) -> list[Image.Image]:
        return [Image.new("RGB", (width, height), (s % 256, s // 256 % 256, s // 65536 % 256)) for s in seeds]
