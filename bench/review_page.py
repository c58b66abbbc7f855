"""The review gallery at 10,000 ads: its first page, and a page filtered by brand and channel.

The ads are inserted straight into a migrated database (no generation): 1,250 briefs over 10 runs, four
channels, two variants each, with platform fields, a score embedding, an image and a creative row (no file:
the page only links to them), and a third of the ads already decided. Each page is fetched through
Starlette's TestClient; the median of a few fetches is printed."""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from starlette.testclient import TestClient

from adforge.flows.review_app import create_app
from adforge.flows.settings import load_settings
from adforge.storage.db import Store
from bench.common import timed

CHANNELS = ("facebook", "instagram", "google_search", "linkedin")
# One statement per table, each row made from its number; brief b belongs to run b % 10 and brand b % 25.
FILL = """
    INSERT INTO runs (run_id, status, started_at)
    SELECT 'run-' || r, 'completed', TIMESTAMPTZ '2026-01-01' + to_hours(r) FROM range(10) t(r);
    INSERT INTO briefs (brief_id, brief_hash, run_id, campaign_id, brand, product, audience, key_message,
                        tone, channels, variants, images_per_copy, banned_words, language)
    SELECT 'brief-' || b, 'hash-' || b, 'run-' || (b % 10), 'campaign-' || (b % 50), 'Brand ' || (b % 25),
           'product ' || b, 'people who like things', 'it is good', 'warm', $channels, 2, 1, [], 'en'
    FROM range($briefs) t(b);
    INSERT INTO copies (copy_id, run_id, brief_id, brief_hash, channel, variant, headline, body, cta,
                        image_prompt, attempts, seed, text_model, sampling, prompt, checks, relevance,
                        readability, score_model, embedding)
    SELECT 'copy-' || n, 'run-' || (b % 10), 'brief-' || b, 'hash-' || b, $channels[c + 1], v + 1,
           'Brand ' || (b % 25) || ': headline ' || n, 'Brand ' || (b % 25) || ' body text number ' || n,
           'Shop now', 'a still life', 1, n, 'fake', '{}', '[]',
           '{"channel_limits": "passed", "claims": "failed: says free"}', 0.5, 60.0, 'hashing',
           [sin(n + k)::FLOAT for k in range(64)]
    FROM (SELECT n, n // 8 AS b, n // 2 % 4 AS c, n % 2 AS v FROM range($briefs * 8) t(n));
    INSERT INTO copy_assets (copy_id, field, position, text, run_id)
    SELECT copy_id, f, p, headline || ' ' || p, run_id
    FROM copies, (VALUES ('headline', 1), ('headline', 2), ('description', 1)) t(f, p);
    INSERT INTO images (image_id, copy_id, run_id, brief_id, image_index, prompt, seed, path, width, height,
                        steps, guidance_scale, image_model, sha256, bytes)
    SELECT 'image-' || copy_id, copy_id, run_id, brief_id, 0, 'p', 0, '/nowhere.png', 64, 64, 1, 1, 'fake',
           '', 0 FROM copies;
    INSERT INTO creatives (creative_id, kind, copy_id, image_id, run_id, brief_id, channel, path, width,
                           height, font, font_size, headline_lines, backing_opacity, contrast_ratio, sha256,
                           bytes)
    SELECT 'creative-' || copy_id, 'creative', copy_id, 'image-' || copy_id, run_id, brief_id, channel,
           '/nowhere.png', 1200, 628, 'f', 40, 1, 0.5, 7.0, '', 0 FROM copies;
    INSERT INTO reviews (review_id, item_id, decision, reviewer)
    SELECT 'review-' || copy_id, copy_id, 'approved', 'bench' FROM copies WHERE hash(copy_id) % 3 = 0;
"""


def build(db: Path, briefs: int) -> int:
    store = Store(db)
    channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
    with store.connect() as con:
        con.execute(FILL.replace("$channels", channels).replace("$briefs", str(briefs)))
        return con.execute("SELECT count(*) FROM copies").fetchone()[0]


def median_ms(client: TestClient, url: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        with timed() as t:
            response = client.get(url)
        assert response.status_code == 200, response.text[-300:]
        times.append(t["s"] * 1000)
    return round(statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--briefs", type=int, default=1250, help="briefs (8 ads each; default: 1250)")
    parser.add_argument("--repeats", type=int, default=5, help="fetches per page (default: 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "review.duckdb"
        # Build: one transaction of generated rows.
        with timed() as t:
            ads = build(db, args.briefs)
        print(f"built {ads} ads in {t['s']:.1f} s")
        settings = load_settings(overrides={"db": str(db), "artifacts": str(Path(folder) / "artifacts")})
        client = TestClient(create_app(settings, str(db), reviewer="bench"))
        # Time each page: the first (pending ads, newest run), a filtered one, and a later page.
        pages = {
            "first page": "/",
            "brand + channel filter": "/?brand=Brand+7&channel=instagram&status=all",
            "page 50": "/?page=50&status=all",
        }
        for name, url in pages.items():
            print(f"{name}: {median_ms(client, url, args.repeats)} ms (median of {args.repeats})")


if __name__ == "__main__":
    main()
