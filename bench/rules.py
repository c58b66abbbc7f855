"""The per-copy rule checks: old implementations (kept here as a labelled reference) vs tasks.rules.

About 3,000 made-up copies (several brands, languages and channels, 3 variants per brief and channel,
some near-duplicate variants, some in the wrong language or over a limit), timed three ways:
similarity to the sibling variants, language identification, and the whole check_copy per copy. The
old and new outcomes are compared copy by copy, and the two similarity measures on hand-written pairs."""

from __future__ import annotations

import argparse
import random
import re
from difflib import SequenceMatcher
from statistics import mean
from typing import Any

import py3langid as langid
from pydantic import ValidationError

from adforge.tasks.channels import CHANNELS, CTA_BUTTONS, copy_model, rule_violations
from adforge.tasks.rules import (
    LANGUAGE_MARGIN,
    MIN_LANGUAGE_LETTERS,
    BrandRules,
    banned_words_used,
    brand_present,
    check_copy,
    copy_text,
    language_margins,
    language_text,
    max_sibling_similarity,
    similarity,
)
from bench.common import save, timed

LANGUAGES = frozenset({"en", "de", "es", "fr"})
MAX_SIMILARITY = 0.8

# --- Reference: the implementations tasks.rules had before rapidfuzz and batched language scores. ---


def old_similarity(a: str, b: str) -> float:
    """REFERENCE (old): difflib's ratio on the normalised texts."""
    return SequenceMatcher(None, _normalise(a), _normalise(b)).ratio()


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def old_max_sibling_similarity(fields: dict[str, Any], siblings: list[str]) -> float | None:
    """REFERENCE (old): each sibling compared in turn, the new text normalised every time."""
    return max((old_similarity(copy_text(fields), s) for s in siblings), default=None)


def old_language_margin(text: str, language: str) -> tuple[str, float]:
    """REFERENCE (old): py3langid.rank for one text."""
    scores = dict(langid.rank(text))
    top = max(scores, key=lambda lang: scores[lang])
    return top, scores[top] - scores.get(language, float("-inf"))


def old_check_copy(
    fields: dict[str, Any], channel: str, rules: BrandRules, languages: frozenset[str],
    siblings: list[str], max_similarity: float,
) -> tuple[dict[str, str], str, float | None]:  # fmt: skip
    """REFERENCE (old): check_copy as it was, language identified per copy."""
    score = old_max_sibling_similarity(fields, siblings)
    checks = {
        "channel_limits": _old_limits(fields, channel),
        "brand_named": "passed" if brand_present(fields, rules.brand) else f"failed: {rules.brand} not named",
        "banned_words": _old_banned(fields, rules.banned_words),
        "language": _old_language(fields, rules.language, languages),
        "distinct": _old_distinct(score, max_similarity),
    }
    failed = [f"{n}: {o[len('failed: ') :]}" for n, o in checks.items() if o.startswith("failed")]
    return checks, failed[0] if failed else "", score


def _old_limits(fields: dict[str, Any], channel: str) -> str:
    try:
        copy = copy_model(channel).model_validate(fields)
    except ValidationError as e:
        first = e.errors()[0]
        return f"failed: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    problems = rule_violations(channel, copy)
    return f"failed: {'; '.join(problems)}" if problems else "passed"


def _old_banned(fields: dict[str, Any], banned: tuple[str, ...]) -> str:
    if not banned:
        return "skipped: no banned words"
    used = banned_words_used(fields, list(banned))
    return f"failed: uses {', '.join(used)}" if used else "passed"


def _old_language(fields: dict[str, Any], language: str, languages: frozenset[str]) -> str:
    if "any" not in languages and language not in languages:
        return f"skipped: the text model writes {', '.join(sorted(languages))}, not {language}"
    text = f"{fields['headline']}. {fields['body']}"
    if sum(c.isalpha() for c in text) < MIN_LANGUAGE_LETTERS:
        return "skipped: too short to tell"
    top, margin = old_language_margin(text, language)
    return "passed" if margin <= LANGUAGE_MARGIN else f"failed: reads as {top}, the brief asks for {language}"


def _old_distinct(score: float | None, max_similarity: float) -> str:
    if score is None:
        return "skipped: first variant"
    return f"failed: {score:.2f} similar to another variant" if score > max_similarity else "passed"


# --- Made-up copy: brands, products and sentences in four languages, words drawn at random. ---

# fmt: off
SYLLABLES = ["nor", "brew", "peak", "gear", "led", "ger", "bloom", "ly", "volt", "way", "sky", "line",
             "kin", "der", "ora", "tix", "mon", "sol", "vita", "zen", "lum", "arc", "fern", "quill", "rho",
             "dax"]
WORDS = {
    "en": {
        "product": ["cold brew concentrate", "trail running shoes", "invoicing software",
                    "flower subscription", "electric scooter", "meal kit", "rain jacket",
                    "city break package", "standing desk", "protein snack bar",
                    "noise-cancelling headphones", "language course", "dog food"],
        "benefit": ["saves you an hour a day", "keeps you dry on every trail",
                    "gets you paid twice as fast", "brings fresh flowers every week",
                    "beats traffic on a single charge", "puts a healthy dinner on the table in minutes",
                    "fits in a jacket pocket", "makes every morning a little easier",
                    "lasts twice as long as the rest"],
        "adjective": ["fresh", "fast", "simple", "smart", "bold", "light", "quiet", "honest", "local",
                      "reliable", "handmade", "effortless", "seasonal", "friendly"],
        "audience": ["busy parents", "weekend hikers", "small business owners", "students", "commuters",
                     "remote teams", "coffee lovers", "runners", "new homeowners", "travellers"],
        "sentence": ["{brand} {benefit}.", "Meet the {adjective} {product} from {brand}.",
                     "Made for {audience} who want something {adjective}.",
                     "Order before {day} and save {n}% on your first {product}.",
                     "{brand} is the {adjective} way to get more done.",
                     "Join {n},000 {audience} who already switched to {brand}.",
                     "Try it for {n} days and see the difference.",
                     "Our {product} {benefit}, and it stays {adjective}."],
        "headline": ["{adjective} {product}, made simple", "{brand}: {benefit}", "The {adjective} choice",
                     "Save {n}% this {day}", "{brand} for {audience}"],
        "day": ["Friday", "Sunday", "Monday", "the weekend", "month end"],
    },
    "de": {
        "product": ["Kaltbrühkaffee", "Laufschuhe", "Rechnungssoftware", "Blumen-Abo", "E-Roller",
                    "Kochbox", "Regenjacke", "Städtereise"],
        "benefit": ["spart dir jeden Tag eine Stunde", "hält dich auf jedem Weg trocken",
                    "bringt jede Woche frische Blumen", "bringt dich ohne Stau zur Arbeit",
                    "macht jeden Morgen ein bisschen leichter"],
        "adjective": ["frisch", "schnell", "einfach", "leicht", "leise", "ehrlich", "regional",
                      "zuverlässig"],
        "audience": ["Eltern", "Wanderer", "Selbstständige", "Studierende", "Pendler", "Kaffeeliebhaber"],
        "sentence": ["{brand} {benefit}.", "Entdecke die neue {product} von {brand}.",
                     "Gemacht für {audience}, die es {adjective} mögen.",
                     "Bestelle bis {day} und spare {n}% auf deine erste Bestellung.",
                     "Schon {n}.000 {audience} sind zu {brand} gewechselt.",
                     "Teste es {n} Tage lang und überzeuge dich selbst."],
        "headline": ["{brand}: einfach {adjective}", "Spare {n}% bis {day}", "{brand} für {audience}"],
        "day": ["Freitag", "Sonntag", "Montag", "Monatsende"],
    },
    "es": {
        "product": ["café cold brew", "zapatillas de trail", "programa de facturación",
                    "suscripción de flores", "patinete eléctrico", "caja de recetas",
                    "chaqueta impermeable"],
        "benefit": ["te ahorra una hora al día", "te mantiene seco en cada ruta",
                    "te trae flores frescas cada semana", "te lleva al trabajo sin atascos",
                    "hace cada mañana un poco más fácil"],
        "adjective": ["fresco", "rápido", "sencillo", "ligero", "silencioso", "honesto", "local", "fiable"],
        "audience": ["padres", "senderistas", "autónomos", "estudiantes", "viajeros", "amantes del café"],
        "sentence": ["{brand} {benefit}.", "Descubre el nuevo {product} de {brand}.",
                     "Pensado para {audience} que lo quieren {adjective}.",
                     "Pide antes del {day} y ahorra un {n}% en tu primer pedido.",
                     "Ya son {n}.000 {audience} los que se han pasado a {brand}.",
                     "Pruébalo durante {n} días y nota la diferencia."],
        "headline": ["{brand}: {adjective} de verdad", "Ahorra un {n}% hasta el {day}",
                     "{brand} para {audience}"],
        "day": ["viernes", "domingo", "lunes", "fin de mes"],
    },
    "fr": {
        "product": ["café cold brew", "chaussures de trail", "logiciel de facturation", "abonnement floral",
                    "trottinette électrique", "panier repas", "veste de pluie"],
        "benefit": ["vous fait gagner une heure par jour", "vous garde au sec sur tous les sentiers",
                    "vous apporte des fleurs fraîches chaque semaine",
                    "vous emmène au travail sans bouchons", "rend chaque matin un peu plus facile"],
        "adjective": ["frais", "rapide", "simple", "léger", "silencieux", "honnête", "local", "fiable"],
        "audience": ["parents", "randonneurs", "indépendants", "étudiants", "voyageurs", "amateurs de café"],
        "sentence": ["{brand} {benefit}.", "Découvrez le nouveau {product} de {brand}.",
                     "Conçu pour les {audience} qui le veulent {adjective}.",
                     "Commandez avant {day} et économisez {n}% sur votre première commande.",
                     "Déjà {n} 000 {audience} sont passés à {brand}.",
                     "Essayez-le pendant {n} jours et voyez la différence."],
        "headline": ["{brand} : tout simplement {adjective}", "{n}% de remise jusqu'à {day}",
                     "{brand} pour les {audience}"],
        "day": ["vendredi", "dimanche", "lundi", "la fin du mois"],
    },
}
# fmt: on


def fill(rng: random.Random, template: str, lang: str, brand: str, product: str) -> str:
    w = WORDS[lang]
    return template.format(
        brand=brand, product=product, benefit=rng.choice(w["benefit"]), adjective=rng.choice(w["adjective"]),
        audience=rng.choice(w["audience"]), day=rng.choice(w["day"]), n=rng.randint(2, 60),
    )  # fmt: skip


def write_copy(rng: random.Random, lang: str, brand: str, product: str, channel: str) -> dict[str, str]:
    """One copy in `lang`: a headline and sentences up to a random share of the channel's limits."""
    spec = CHANNELS[channel]
    headline = fill(rng, rng.choice(WORDS[lang]["headline"]), lang, brand, product)
    if len(headline) > spec.headline_max and rng.random() > 0.05:  # a few headlines stay over the limit
        headline = headline[: spec.headline_max].rsplit(" ", 1)[0]
    target = rng.uniform(0.4, 1.0) * spec.body_max
    body = f"{brand} {rng.choice(WORDS[lang]['benefit'])}."
    while True:
        sentence = fill(rng, rng.choice(WORDS[lang]["sentence"]), lang, brand, product)
        if len(body) + 1 + len(sentence) > target:
            break
        body += " " + sentence
    if spec.max_hashtags and rng.random() < 0.5:
        tags = " ".join(
            f"#{rng.choice(WORDS[lang]['adjective'])}" for _ in range(rng.randint(1, spec.max_hashtags))
        )
        body = body[: spec.body_max - len(tags) - 1] + " " + tags
    image_prompt = f"{product} on a table, {rng.choice(WORDS['en']['adjective'])} light"
    return {"headline": headline, "body": body, "cta": rng.choice(CTA_BUTTONS), "image_prompt": image_prompt}


def near_duplicate(rng: random.Random, fields: dict[str, str]) -> dict[str, str]:
    """The same copy with a word or two changed and different punctuation: what the distinct rule refuses."""
    words = fields["body"].split()
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(words))
        words[i] = words[i].upper() if rng.random() < 0.5 else words[i] + ","
    return fields | {"body": " ".join(words), "cta": rng.choice(CTA_BUTTONS)}


def make_copies(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """About n copies: 3 variants per brief and channel, with each variant's earlier siblings."""
    rng = random.Random(seed)
    copies: list[dict[str, Any]] = []
    while len(copies) < n:
        lang = rng.choices(["en", "de", "es", "fr"], weights=[7, 1, 1, 1])[0]
        brand = "".join(rng.sample(SYLLABLES, rng.randint(2, 3))).title()
        product = rng.choice(WORDS[lang]["product"])
        banned = tuple(rng.sample(WORDS[lang]["adjective"], rng.randint(0, 2)))
        rules = BrandRules(brand, banned, lang)
        for channel in rng.sample(list(CHANNELS), rng.randint(1, 3)):
            siblings: list[str] = []
            for variant in range(3):
                if variant and rng.random() < 0.15:
                    fields = near_duplicate(rng, copies[-1]["fields"])
                else:  # now and then written in another language than the brief's
                    written = lang if rng.random() > 0.05 else rng.choice(sorted(LANGUAGES - {lang}))
                    fields = write_copy(rng, written, brand, product, channel)
                copies.append(
                    {"fields": fields, "channel": channel, "rules": rules, "siblings": list(siblings)}
                )
                siblings.append(copy_text(fields))
    return copies[:n]


# --- Hand-written pairs: difflib's and rapidfuzz's similarity, and the decision at 0.8. ---

# fmt: off
PAIRS = [
    ("near duplicate",
     "Cold brew in seconds Nordbrew makes barista coffee at home. Shop now",
     "Cold brew in seconds! Nordbrew makes barista coffee at home, fast. Shop now"),
    ("near duplicate",
     "Stay dry on every trail PeakGear jackets keep the rain out and the warmth in. Learn more",
     "Stay dry on every trail PeakGear jackets keep rain out and warmth in. Shop now"),
    ("near duplicate",
     "Your morning, sorted Nordbrew cold brew concentrate: barista coffee at home in 30 seconds. Order "
     "now",
     "Your mornings, sorted Nordbrew cold brew concentrate gives you barista coffee at home in 30 "
     "seconds. Order now"),
    ("near duplicate",
     "Run further, recover faster StrideLab insoles cushion every step so you can train again tomorrow. "
     "Shop now",
     "Run further and recover faster StrideLab insoles cushion each step so you can train again "
     "tomorrow. Shop now"),
    ("near duplicate",
     "Fresh bread, delivered Crumb & Co bakes sourdough overnight and brings it to your door by 8am. "
     "Order now",
     "Fresh bread delivered daily Crumb & Co bakes sourdough overnight and brings it to your door by 8 "
     "am. Order now"),
    ("near duplicate",
     "Plan less, ship more Taskly keeps your team's sprints on track with one shared board. Try it free",
     "Plan less and ship more Taskly keeps your team's sprints on track with a single shared board. Try "
     "it free"),
    ("near duplicate",
     "Fresh bread, delivered Crumb & Co bakes sourdough overnight and brings it to your door by 8am. "
     "Order now",
     "Fresh bread, delivered Crumb & Co bakes rye and sourdough overnight and drops it at your door by "
     "8am. Order now"),
    ("near duplicate, long",
     "Hi there, your weekend deserves better coffee. Nordbrew cold brew concentrate turns a glass of "
     "milk or water into a smooth barista-style drink in thirty seconds, no machine, no mess, no queue. "
     "Each bottle makes twelve drinks and keeps for a month in the fridge, so your favourite coffee is "
     "always ready when you are. Order before Friday and we ship for free. Order now",
     "Hi there, your weekend deserves better coffee. Nordbrew cold brew concentrate turns a glass of "
     "milk or water into a smooth barista-style drink in 30 seconds: no machine, no mess, no queue. "
     "Every bottle makes twelve drinks and keeps for a month in the fridge, so your favourite coffee is "
     "ready whenever you are. Order by Friday and shipping is free. Order now"),
    ("near duplicate, long",
     "Summer trails are calling PeakGear's new ultralight shell weighs just 180 grams and packs into its"
     " own pocket, so it is always there when the weather turns. Fully taped seams, a helmet-ready hood "
     "and pit zips keep you dry and cool on long climbs. #hiking #outdoors #peakgear Shop now",
     "Summer trails are calling PeakGear's new ultralight shell weighs only 180 grams and packs into its"
     " own pocket, so it's always with you when the weather turns. Taped seams, a helmet-ready hood and "
     "pit zips keep you dry and cool on the long climbs. #hiking #outdoors #peakgear Shop now"),
    ("one clause rewritten",
     "Cold brew in seconds Nordbrew makes barista coffee at home. Shop now",
     "Cold brew in seconds Nordbrew brings the cafe to your kitchen. Shop now"),
    ("one clause rewritten",
     "Run further, recover faster StrideLab insoles cushion every step so you can train again tomorrow. "
     "Shop now",
     "Run further, recover faster StrideLab insoles absorb the impact of every stride on hard roads. "
     "Shop now"),
    ("one clause rewritten",
     "Plan less, ship more Taskly keeps your team's sprints on track with one shared board. Try it free",
     "Plan less, ship more Taskly turns messy backlogs into one clear plan for the whole team. Try it "
     "free"),
    ("rewording",
     "Cold brew in seconds Nordbrew makes barista coffee at home. Shop now",
     "Skip the cafe queue Pour, stir, sip: Nordbrew is your home barista. Order now"),
    ("rewording",
     "Stay dry on every trail PeakGear jackets keep the rain out and the warmth in. Learn more",
     "Weatherproof adventures PeakGear shells shrug off storms so you can keep hiking. Shop now"),
    ("rewording",
     "Your morning, sorted Nordbrew cold brew concentrate: barista coffee at home in 30 seconds. Order "
     "now",
     "Coffee shop taste, kitchen speed Half a minute is all Nordbrew needs to make a cafe-quality cold "
     "brew. Shop now"),
    ("rewording",
     "Run further, recover faster StrideLab insoles cushion every step so you can train again tomorrow. "
     "Shop now",
     "Less soreness, more miles Built by physios, StrideLab insoles absorb impact on every run. Learn "
     "more"),
    ("rewording",
     "Plan less, ship more Taskly keeps your team's sprints on track with one shared board. Try it free",
     "One board for the whole team With Taskly, sprint planning takes minutes instead of meetings. Get "
     "started"),
    ("rewording, long",
     "Hi there, your weekend deserves better coffee. Nordbrew cold brew concentrate turns a glass of "
     "milk or water into a smooth barista-style drink in thirty seconds, no machine, no mess, no queue. "
     "Each bottle makes twelve drinks and keeps for a month in the fridge, so your favourite coffee is "
     "always ready when you are. Order before Friday and we ship for free. Order now",
     "Good morning! Imagine skipping the coffee shop line for good. With Nordbrew, a splash of our "
     "slow-steeped concentrate and some ice gives you a cafe-quality cold brew at home. One bottle lasts"
     " about two weeks of daily drinks, and our subscribers save 15% on every delivery. Start your "
     "subscription today and taste the difference. Subscribe"),
    ("unrelated",
     "Cold brew in seconds Nordbrew makes barista coffee at home. Shop now",
     "Rain jackets for hikers PeakGear keeps you dry. Learn more"),
    ("unrelated",
     "Run further, recover faster StrideLab insoles cushion every step so you can train again tomorrow. "
     "Shop now",
     "Fresh bread, delivered Crumb & Co bakes sourdough overnight and brings it to your door by 8am. "
     "Order now"),
    ("unrelated",
     "Plan less, ship more Taskly keeps your team's sprints on track with one shared board. Try it free",
     "Stay dry on every trail PeakGear jackets keep the rain out and the warmth in. Learn more"),
    ("unrelated",
     "Cold brew in 30 seconds",
     "Rain jackets for hikers"),
    ("unrelated, long",
     "Dear founder, closing the books every month should not take a week. Ledgerly connects to your "
     "bank, card and payroll accounts, matches every transaction automatically and flags only the ones "
     "that need a human. Teams of five to fifty close in two days on average. Book a fifteen-minute demo"
     " and see your own numbers reconciled live. Book now",
     "Summer trails are calling PeakGear's new ultralight shell weighs just 180 grams and packs into its"
     " own pocket, so it is always there when the weather turns. Fully taped seams, a helmet-ready hood "
     "and pit zips keep you dry and cool on long climbs. #hiking #outdoors #peakgear Shop now"),
]
# fmt: on


def compare_pairs() -> dict[str, Any]:
    rows = [(kind, old_similarity(a, b), similarity(a, b)) for kind, a, b in PAIRS]
    table = [
        {
            "kind": kind,
            "difflib": round(old, 3),
            "rapidfuzz": round(new, 3),
            "same decision": (old > 0.8) == (new > 0.8),
        }
        for kind, old, new in rows
    ]
    return {
        "pairs": len(rows),
        "same decision at 0.8": sum(r["same decision"] for r in table),
        "max |rapidfuzz - difflib|": round(max(abs(n - o) for _, o, n in rows), 3),
        "table": table,
    }


# --- Timing ---


def best(repeat: int, run) -> tuple[float, Any]:
    """Fastest wall seconds of `repeat` runs, and the last run's result."""
    seconds = []
    for _ in range(repeat):
        with timed() as t:
            result = run()
        seconds.append(t["s"])
    return min(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the fastest counts")
    args = parser.parse_args()
    copies = make_copies(args.copies)
    n = len(copies)
    texts = [language_text(c["fields"]) for c in copies]
    wanted = [c["rules"].language for c in copies]
    language_margins(texts[:1], wanted[:1])  # loads py3langid's model, which the old code shares

    def new_checks(batched: bool) -> list:
        known = language_margins(texts, wanted) if batched else [None] * n
        return [
            check_copy(c["fields"], c["channel"], c["rules"], LANGUAGES, c["siblings"], MAX_SIMILARITY, lang)
            for c, lang in zip(copies, known, strict=True)
        ]

    runs = {
        "similarity to siblings": {
            "old": lambda: [old_max_sibling_similarity(c["fields"], c["siblings"]) for c in copies],
            "new": lambda: [max_sibling_similarity(c["fields"], c["siblings"]) for c in copies],
        },
        "language identification": {
            "old": lambda: [old_language_margin(t, w) for t, w in zip(texts, wanted, strict=True)],
            "new": lambda: language_margins(texts, wanted),
        },
        "check_copy": {
            "old": lambda: [
                old_check_copy(
                    c["fields"], c["channel"], c["rules"], LANGUAGES, c["siblings"], MAX_SIMILARITY
                )
                for c in copies
            ],
            "new": lambda: new_checks(batched=True),
            "new, language per copy": lambda: new_checks(batched=False),
        },
    }
    rates: dict[str, dict[str, float]] = {}
    results: dict[str, dict[str, Any]] = {}
    for name, variants in runs.items():
        rates[name], results[name] = {}, {}
        for label, run in variants.items():
            seconds, results[name][label] = best(args.repeat, run)
            rates[name][label] = round(n / seconds)
    ratios = {f"{name} new/old": round(r["new"] / r["old"], 2) for name, r in rates.items()}
    ratios["check_copy new, language per copy/old"] = round(
        rates["check_copy"]["new, language per copy"] / rates["check_copy"]["old"], 2
    )
    save("rules", {"copies": n, "copies_per_s": rates, "ratios": ratios,
                   "agreement": agreement(results), "similarity_pairs": compare_pairs()})  # fmt: skip


def agreement(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where the old and new implementations differ, copy by copy."""
    old_sim, new_sim = results["similarity to siblings"]["old"], results["similarity to siblings"]["new"]
    scored = [(o, s) for o, s in zip(old_sim, new_sim, strict=True) if o is not None]
    old_lang, new_lang = results["language identification"]["old"], results["language identification"]["new"]
    old_checks, new_checks = results["check_copy"]["old"], results["check_copy"]["new"]
    differing: dict[str, int] = {}
    for (old, _, _), (new, _, _) in zip(old_checks, new_checks, strict=True):
        for rule in old:
            differing[rule] = differing.get(rule, 0) + (old[rule] != new[rule])
    return {
        "copies with siblings": len(scored),
        "similarity mean old, new": [
            round(mean(o for o, _ in scored), 3),
            round(mean(s for _, s in scored), 3),
        ],
        "similarity max |new - old|": round(max(abs(s - o) for o, s in scored), 3),
        "similarity new < old": sum(s < o - 1e-12 for o, s in scored),
        "distinct refusals old, new": [
            sum(o > MAX_SIMILARITY for o, _ in scored),
            sum(s > MAX_SIMILARITY for _, s in scored),
        ],
        # The other "distinct" differences below refuse either way, with another score in the message.
        "distinct decisions that differ": sum(
            (o > MAX_SIMILARITY) != (s > MAX_SIMILARITY) for o, s in scored
        ),
        "language: same top": sum(o[0] == n[0] for o, n in zip(old_lang, new_lang, strict=True)),
        "language: max relative margin difference": max(
            abs(o[1] - n[1]) / abs(o[1])
            for o, n in zip(old_lang, new_lang, strict=True)
            if o[1] not in (0, float("inf"))
        ),
        "check outcomes that differ, per rule": differing,
    }


if __name__ == "__main__":
    main()
