"""A run's report: one static HTML page with its copy, images, failures and rejected rows."""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from collections.abc import Callable
from html import escape
from itertools import groupby
from typing import Any

STYLE = """
body { font-family: sans-serif; margin: 2rem; color: #111; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
td, th { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
.copy { border: 1px solid #ccc; padding: .5rem; margin: .5rem 0; max-width: 40rem; }
.copy img.image { width: 96px; height: 96px; image-rendering: pixelated; margin-right: .3rem; }
.copy img.creative { max-width: 100%; max-height: 320px; margin-right: .3rem; }
.cta { font-weight: bold; }
.scores { color: #555; font-size: .9rem; }
.ad { border: 1px solid #ddd; border-radius: 8px; padding: .6rem; margin: .3rem 0; }
.ad p { white-space: pre-line; }
.ad .label { font-weight: bold; font-size: .8rem; margin-right: .4rem; }
.ad .title { color: #1a0dab; font-size: 1.15rem; margin: .2rem 0; }
.ad .muted { color: #777; }
.ad .button { display: inline-block; background: #1877f2; color: #fff; padding: .3rem .8rem;
              border-radius: 4px; font-weight: bold; }
.ad .card { border: 1px solid #ccc; border-radius: 12px; padding: .3rem; }
"""


def render_report(
    summary: dict[str, Any],
    assets: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    rejected: list[dict[str, Any]],
    folder: str,
    review_url: str = "",
    totals: dict[str, int] | None = None,
) -> str:
    """HTML for one run; image links are relative to `folder`, where the page is saved; `review_url` is the
    review gallery of the run's pending ads. `totals` counts the run's assets, failures and rejected
    rows where the lists hold only the first of them."""
    run_id = escape(summary["run_id"])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>adforge {run_id}</title>",
             f"<style>{STYLE}</style></head><body><h1>Run {run_id}</h1>", _table(summary)]  # fmt: skip
    if summary.get("note"):
        parts.append(f"<p>{escape(summary['note'])}</p>")
    if summary.get("awaiting_review"):
        link = f" <a href='{escape(review_url)}'>{escape(review_url)}</a>" if review_url else ""
        waiting = f"{summary['awaiting_review']} ads await review"
        parts.append(f"<p class='review'>{waiting}: run <code>adforge review</code>, then open{link}. "
                     "Exports take approved ads only.</p>")  # fmt: skip
    totals = totals or {}
    parts.append(f"<h2>Copy written by this run ({_count(assets, totals.get('assets'))})</h2>")
    key = lambda a: (a["brand"], a["brief_id"])  # noqa: E731
    for (brand, brief_id), rows in groupby(sorted(assets, key=key), key=key):
        parts.append(f"<h3>{escape(brand)} <small>{escape(brief_id)}</small></h3>")
        order = lambda a: (a["channel"], a.get("segment_name") or "", a.get("locale") or "", a["variant"])  # noqa: E731
        parts += [_copy(a, folder) for a in sorted(rows, key=order)]
    if failures:
        columns = ["stage", "brief_id", "channel", "segment_id", "locale", "variant", "reason", "attempts"]
        parts += [f"<h2>Failures ({_count(failures, totals.get('failures'))})</h2>", _rows(failures, columns)]
    if rejected:
        parts += [f"<h2>Rejected rows ({_count(rejected, totals.get('rejected'))})</h2>",
                  _rows(rejected, ["source_file", "source_row", "brief_id", "reason"])]  # fmt: skip
    return "\n".join(parts) + "\n</body></html>\n"


def _count(shown: list, total: int | None) -> str:
    """A list's heading count; where it holds only the first rows, how many of how many, and where the
    rest are."""
    if total is None or total <= len(shown):
        return str(len(shown))
    return f"{total}; the first {len(shown)} shown, all of them are in the database: adforge query"


def _copy(asset: dict[str, Any], folder: str) -> str:
    """One copy with its creatives (or, where none were made, its raw images), shown as its platform's ad
    where its platform fields are stored (copies written before those were have none)."""
    kind, paths = (
        ("creative", asset["creative_paths"]) if asset["creative_paths"] else ("image", asset["image_paths"])
    )
    images = "".join(
        f"<img class='{kind}' src='{escape(posixpath.relpath(p, folder))}' alt='{kind} {i}'>"
        for i, p in enumerate(paths)
    )
    platform = asset.get("platform") or {}
    layout = LAYOUTS.get(asset["channel"]) if platform else None
    ad = layout(platform, asset, images) if layout else _plain(asset, images)
    audience = "".join(f" · {escape(asset[k])}" for k in ("segment_name", "locale") if asset.get(k))
    return (
        f"<div class='copy'><p><b>{escape(asset['channel'])}</b>{audience} · variant {asset['variant']}</p>"
        f"{ad}{_scores(asset)}{_checks(asset)}</div>"
    )


Platform = dict[str, list[str]]  # a copy's platform fields: field → its texts in position order


def _v(platform: Platform, field: str, i: int = 0) -> str:
    """The escaped i-th value of a platform field ("" where it has none)."""
    values = platform.get(field) or []
    return escape(values[i]) if i < len(values) else ""


def _line(text: str, cls: str = "") -> str:
    """A paragraph of escaped text, or nothing where the text is empty (an optional field)."""
    attribute = f" class='{cls}'" if cls else ""
    return f"<p{attribute}>{text}</p>" if text else ""


def _items(values: list[str]) -> str:
    return "".join(f"<li>{escape(v)}</li>" for v in values)


def _button(asset: dict[str, Any]) -> str:
    return f"<span class='button'>{escape(asset['cta'])}</span>"


def _plain(asset: dict[str, Any], images: str) -> str:
    return (
        f"<h4>{escape(asset['headline'])}</h4><p>{escape(asset['body'])}</p>"
        f"<p class='cta'>{escape(asset['cta'])}</p><div>{images}</div>"
    )


def _search(p: Platform, asset: dict[str, Any], images: str) -> str:
    """A Google search result of the first three headlines and two descriptions; Google rotates them all."""
    heads, descs = p.get("headlines") or [], p.get("descriptions") or []
    return (
        f"<div class='ad search'><span class='label'>Ad</span>"
        f"<p class='title'>{escape(' | '.join(heads[:3]))}</p><p>{escape(' '.join(descs[:2]))}</p></div>"
        f"<details><summary>all {len(heads)} headlines, {len(descs)} descriptions</summary>"
        f"<p>Headlines</p><ol>{_items(heads)}</ol><p>Descriptions</p><ol>{_items(descs)}</ol></details>"
        f"<div>{images}</div>"
    )


def _display(p: Platform, asset: dict[str, Any], images: str) -> str:
    return (
        f"<div class='ad display'><p><b>{_v(p, 'headlines')}</b></p>{_line(_v(p, 'long_headline'))}"
        f"{_line(_v(p, 'descriptions'))}<div>{images}</div>{_button(asset)}</div>"
    )


def _meta(p: Platform, asset: dict[str, Any], images: str) -> str:
    return (
        f"<div class='ad meta'>{_line(_v(p, 'primary_text'))}<div>{images}</div>"
        f"<p><b>{_v(p, 'headline')}</b></p>{_line(_v(p, 'description'), 'muted')}{_button(asset)}</div>"
    )


def _linkedin(p: Platform, asset: dict[str, Any], images: str) -> str:
    return (
        f"<div class='ad linkedin'>{_line(_v(p, 'intro_text'))}<div>{images}</div>"
        f"<p><b>{_v(p, 'headline')}</b></p>{_button(asset)}</div>"
    )


def _x(p: Platform, asset: dict[str, Any], images: str) -> str:
    return (
        f"<div class='ad x'>{_line(_v(p, 'post'))}"
        f"<div class='card'><div>{images}</div><p>{_v(p, 'card_headline')}</p></div></div>"
    )


def _email(p: Platform, asset: dict[str, Any], images: str) -> str:
    return (
        f"<div class='ad email'><p><b>Subject: {_v(p, 'subject')}</b></p>{_line(_v(p, 'preheader'), 'muted')}"
        f"{_line(_v(p, 'body'))}<div>{images}</div>{_button(asset)}</div>"
    )


LAYOUTS: dict[str, Callable[[Platform, dict[str, Any], str], str]] = {
    "google_search": _search, "display": _display, "facebook": _meta, "instagram": _meta,
    "linkedin": _linkedin, "x": _x, "email": _email,
}  # fmt: skip


def _scores(asset: dict[str, Any]) -> str:
    """The copy's scores ('–' where it has none), and the rules it failed or its refused samples broke."""
    scores = [("relevance", 2), ("diversity", 2), ("readability", 0)]
    parts = [f"{name} {_number(asset.get(name), digits)}" for name, digits in scores]
    checks = json.loads(asset.get("checks") or "{}")
    failed = [r for r, outcome in checks.items() if isinstance(outcome, str) and outcome.startswith("failed")]
    if failed:
        parts.append(f"failed: {', '.join(failed)}")
    refused = Counter(reason.split(":")[0] for reason in checks.get("refused_samples", []))
    if refused:
        parts.append(f"refused samples: {', '.join(f'{r} {n}' for r, n in refused.most_common())}")
    return f"<p class='scores'>{escape(' · '.join(parts))}</p>"


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _checks(asset: dict[str, Any]) -> str:
    """The rules the copy was checked against, with their outcomes (older copies have none stored)."""
    if not asset.get("checks"):
        return ""
    items = "".join(
        f"<li>{escape(rule)}: {escape(outcome if isinstance(outcome, str) else '; '.join(outcome))}</li>"
        for rule, outcome in json.loads(asset["checks"]).items()
    )
    similarity = (
        "" if asset["similarity"] is None else f"; similarity to other variants {asset['similarity']:.2f}"
    )
    summary = f"checks · {asset['attempts']} attempt(s){similarity}"
    return f"<details class='checks'><summary>{summary}</summary><ul>{items}</ul></details>"


def _table(values: dict[str, Any]) -> str:
    cells = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in values.items())
    return f"<table>{cells}</table>"


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


def _rows(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(_blank_none(r.get(c))))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
