"""Text from brief files shown in a terminal, a log, the dashboard's Markdown or the HTML report."""

from __future__ import annotations

import re

from adforge.flows.dashboard import copy_sample
from adforge.flows.generate_campaigns import format_summary
from adforge.tasks.report import render_report
from adforge.tasks.untrusted import markdown, printable, shorten

FORGED = "id\n2026-01-01 00:00:00.000 | INFO    | prefect - all good\r\x1b[31mred\x1b[0m\u202eevil\u2028x\x00"


def test_printable_keeps_one_line_of_plain_text():
    shown = printable(FORGED)
    assert shown == (
        "id\\n2026-01-01 00:00:00.000 | INFO    | prefect - all good"
        "\\r\\x1b[31mred\\x1b[0m\\u202eevil\\u2028x\\x00"
    )
    assert shown.isprintable()
    assert printable("Ünïcødé 🎉 مرحبا 广告 a b") == "Ünïcødé 🎉 مرحبا 广告 a b", "visible text is unchanged"


def test_shorten_cuts_long_values():
    assert shorten("x" * 1_000_000) == "x" * 79 + "…"
    assert shorten("short") == "short"


def test_markdown_shows_the_text_and_nothing_else():
    text = (
        "# Big\n- *bold* _it_ [link](http://evil.example) ![img](x.png) <script>alert(1)</script> `c` &amp;"
    )
    escaped = markdown(text)
    assert "<" not in escaped and ">" not in escaped
    assert "&lt;script&gt;" in escaped and "&amp;amp;" in escaped, "HTML shows as text"
    # Every Markdown character is escaped, so no heading, list, emphasis, link, image or code span is left.
    assert not re.search(r"(?<!\\)[#*_\[\]()!`-]", escaped), escaped


def test_copy_sample_escapes_copy_text():
    asset = {"brand": "**Acme**", "channel": "x", "variant": 1, "headline": "[click](http://evil.example)",
             "body": "<img src=x onerror=alert(1)>\n# not a heading", "cta": "_Shop now_",
             "image_paths": ["/a/image-1.png"]}  # fmt: skip
    text = copy_sample({"run_id": "run-1"}, [asset])
    assert "### \\*\\*Acme\\*\\* · x · variant 1" in text
    assert "**\\[click\\]\\(http\\://evil\\.example\\)**" in text
    assert "&lt;img src\\=x onerror\\=alert\\(1\\)&gt;\n\\# not a heading" in text
    assert "_\\_Shop now\\__ · images: `image-1.png`" in text
    assert copy_sample({"run_id": "r", "note": "<b>x</b>"}, []).endswith("&lt;b&gt;x&lt;/b&gt;")


def test_report_escapes_every_field():
    evil = "<script>alert(1)</script>"
    asset = {"brand": evil, "brief_id": evil, "channel": evil, "variant": 1, "headline": evil, "body": evil,
             "cta": evil, "creative_paths": [], "image_paths": ["/r/images/a'><script>.png"],
             "checks": '{"rule": "<script>"}', "attempts": 1, "similarity": None}  # fmt: skip
    failure = {"stage": "copy", "brief_id": evil, "channel": "x", "variant": 1, "reason": evil, "attempts": 1}
    rejected = {"source_file": evil, "source_row": 0, "brief_id": evil, "reason": evil}
    page = render_report({"run_id": evil, "note": evil}, [asset], [failure], [rejected], "/r/reports")
    assert "<script>" not in page
    assert "src='../images/a&#x27;&gt;&lt;script&gt;.png'" in page, "an attribute cannot be closed"
    assert page.count("&lt;script&gt;") >= 12


def test_summary_lines_are_printable():
    lines = format_summary({"run_id": "run-1", "note": FORGED})
    assert len(lines) == 3 and all(line.isprintable() for line in lines)
