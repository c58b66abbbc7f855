"""The per-platform views' layout, shared by the schema and its documentation."""

from __future__ import annotations

# One view per platform, laid out like its bulk sheet: (view, channels, (field, column, values)). The fields
# and counts are the platforms' (tasks/platforms.py PLATFORM_FORMATS); a field of several values becomes
# numbered columns (headline_1 ... headline_15).
PLATFORM_VIEWS = (
    ("v_google_search_ads", ("google_search",),
     (("headlines", "headline", 15), ("descriptions", "description", 4))),
    ("v_display_ads", ("display",),
     (("headlines", "headline", 5), ("long_headline", "long_headline", 1),
      ("descriptions", "description", 5))),
    ("v_meta_ads", ("facebook", "instagram"),
     (("primary_text", "primary_text", 1), ("headline", "headline", 1), ("description", "description", 1))),
    ("v_linkedin_ads", ("linkedin",), (("intro_text", "intro_text", 1), ("headline", "headline", 1))),
    ("v_x_ads", ("x",), (("post", "post", 1), ("card_headline", "card_headline", 1))),
    ("v_email_ads", ("email",),
     (("subject", "subject", 1), ("preheader", "preheader", 1), ("body", "body", 1))),
)  # fmt: skip


def platform_columns(fields: tuple[tuple[str, str, int], ...]) -> list[tuple[str, str, int]]:
    """A view's asset columns: (column, field, position)."""
    return [
        (column if count == 1 else f"{column}_{position}", field, position)
        for field, column, count in fields
        for position in range(1, count + 1)
    ]
