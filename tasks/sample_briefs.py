"""The bundled sample briefs: a dozen campaigns over several brands that use every channel."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE_BRIEFS = [
    ("nordbrew-01", "spring-24", "Nordbrew", "Cold brew concentrate", "busy young professionals",
     "Barista-quality coffee at home in 30 seconds", "energetic", ["instagram", "x"], 3, 1),
    ("nordbrew-02", "spring-24", "Nordbrew", "Oat milk latte cans", "students on campus",
     "Plant-based and ready when you are", "playful", ["instagram", "facebook"], 2, 1),
    ("peakgear-01", "trail-run", "PeakGear", "Trail running shoes", "weekend hikers",
     "Grip that holds on wet rock", "adventurous", ["google_search", "display"], 3, 1),
    ("peakgear-02", "trail-run", "PeakGear", "Ultralight rain jacket", "outdoor commuters",
     "Stay dry without the bulk", "confident", ["x", "email"], 2, 1),
    ("ledgerly-01", "q3-b2b", "Ledgerly", "Invoicing software", "small business owners",
     "Get paid twice as fast with automatic reminders", "professional", ["linkedin", "email"], 3, 1),
    ("ledgerly-02", "q3-b2b", "Ledgerly", "Expense tracking app", "finance teams",
     "Close the books in a day, not a week", "professional", ["linkedin", "google_search"], 2, 1),
    ("bloomly-01", "mothers-day", "Bloomly", "Flower subscription", "adult children",
     "Fresh flowers every week, delivered", "warm", ["instagram", "email"], 3, 1),
    ("bloomly-02", "mothers-day", "Bloomly", "Same-day bouquets", "last-minute gift buyers",
     "Order by noon, delivered today", "friendly", ["google_search", "facebook"], 2, 1),
    ("voltway-01", "launch", "Voltway", "Electric city scooter", "urban commuters",
     "Beat traffic on 40 km of range", "bold", ["display", "x", "instagram"], 2, 1),
    ("voltway-02", "launch", "Voltway", "Home charging dock", "new scooter owners",
     "Charge overnight, ride all day", "helpful", ["facebook"], 3, 2),
    ("kinder-kitchen-01", "back-to-school", "Kinder Kitchen", "Lunchbox meal kits", "parents",
     "Healthy school lunches in five minutes", "caring", ["facebook", "email"], 2, 1),
    ("skyline-01", "summer-deals", "Skyline Hotels", "City break packages", "couples",
     "Two nights downtown, breakfast included", "inviting", ["display", "linkedin"], 2, 1),
]  # fmt: skip

# Words some brands never want in their ads: the copy rules refuse any sample that uses them.
BANNED_WORDS = {"nordbrew-01": ["cheap", "instant"], "ledgerly-01": ["free"], "bloomly-02": ["late"]}

COLUMNS = ["brief_id", "campaign_id", "brand", "product", "audience", "key_message", "tone",
           "channels", "variants", "images_per_copy"]  # fmt: skip


def write_sample_briefs(out: str | Path) -> int:
    """Write the sample briefs to a Parquet file; returns the number of briefs."""
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in SAMPLE_BRIEFS]
    table = pa.Table.from_pylist(
        [r | {"banned_words": BANNED_WORDS.get(str(r["brief_id"]), [])} for r in rows]
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return table.num_rows
