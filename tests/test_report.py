"""The run's report page: each platform's ad shown the way the platform would show it."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from adforge.tasks.report import render_report

ROW = {"brand": "Nordbrew", "brief_id": "b1", "variant": 1, "headline": "Copy headline", "body": "Copy body",
       "cta": "Shop now", "creative_paths": ["/r/creatives/c1.png"], "image_paths": ["/r/images/i1.png"],
       "checks": None, "attempts": 1, "similarity": None, "relevance": None, "diversity": None,
       "readability": None}  # fmt: skip


class Page(HTMLParser):
    """The text of each element with a class, and of each <li> and <summary>, in page order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.open: list[tuple[str, str]] = []  # (tag, class) of the elements open now
        self.texts: list[tuple[str, str, str]] = []  # (tag, class, text) of each closed element
        self.buffers: list[list[str]] = []
        self.images: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag in ("img", "meta"):  # void elements: never closed
            return
        self.open.append((tag, dict(attrs).get("class") or ""))
        self.buffers.append([])

    def handle_endtag(self, tag: str) -> None:
        (opened, cls), text = self.open.pop(), "".join(self.buffers.pop())
        assert opened == tag, f"<{opened}> closed by </{tag}>"
        self.texts.append((tag, cls, text))
        if self.buffers:
            self.buffers[-1].append(text)

    def handle_data(self, data: str) -> None:
        if self.buffers:
            self.buffers[-1].append(data)

    def find(self, tag: str, cls: str = "") -> list[str]:
        return [text for t, c, text in self.texts if t == tag and (not cls or cls in c.split())]


def page(channel: str, platform: dict[str, list[str]] | None, **row: Any) -> Page:
    asset = ROW | {"channel": channel, **row} | ({} if platform is None else {"platform": platform})
    return Page(render_report({"run_id": "run-1"}, [asset], [], [], "/r/reports"))


def test_search_ad_shows_three_headlines_as_title_and_lists_them_all():
    heads, descs = ["h1", "h2", "h3", "h4", "h5"], ["d1 text.", "d2 text."]
    shown = page(
        "google_search", {"headlines": heads, "descriptions": descs}, creative_paths=[], image_paths=[]
    )
    assert shown.find("span", "label") == ["Ad"]
    assert shown.find("p", "title") == ["h1 | h2 | h3"]
    assert "d1 text. d2 text." in shown.find("p")
    assert shown.find("summary") == ["all 5 headlines, 2 descriptions"]
    assert shown.find("li") == heads + descs
    assert "Copy headline" not in shown.find("h4"), "the platform fields replace the plain copy"


def test_meta_ad_puts_primary_text_above_the_image_and_headline_below():
    platform = {
        "primary_text": ["Cold brew in 30 seconds."],
        "headline": ["Nordbrew"],
        "description": ["Free delivery"],
    }
    shown = page("facebook", platform)
    ad = next(text for tag, cls, text in shown.texts if cls == "ad meta")
    assert ad.index("Cold brew in 30 seconds.") < ad.index("Nordbrew") < ad.index("Free delivery")
    assert shown.find("b") == ["facebook", "Nordbrew"]
    assert shown.find("p", "muted") == ["Free delivery"]
    assert shown.find("span", "button") == ["Shop now"]
    assert shown.images == ["../creatives/c1.png"]
    # A Meta ad's description is optional: without it there is no empty line.
    assert page("instagram", platform | {"description": []}).find("p", "muted") == []


def test_email_shows_subject_preheader_body_and_button():
    platform = {
        "subject": ["Your coffee, faster"],
        "preheader": ["Ready in 30 s"],
        "body": ["Dear commuter,\nhi"],
    }
    shown = page("email", platform)
    assert "Subject: Your coffee, faster" in shown.find("b")
    assert shown.find("p", "muted") == ["Ready in 30 s"]
    assert "Dear commuter,\nhi" in shown.find("p")
    assert shown.find("span", "button") == ["Shop now"]
    assert page("email", platform | {"preheader": []}).find("p", "muted") == [], "the preheader is optional"


def test_copy_without_platform_fields_shows_headline_body_and_cta():
    for platform in (None, {}):
        shown = page("google_search", platform)
        assert shown.find("h4") == ["Copy headline"]
        assert "Copy body" in shown.find("p")
        assert shown.find("p", "cta") == ["Shop now"]
        assert shown.images == ["../creatives/c1.png"]
        assert shown.find("div", "ad") == [] and shown.find("summary") == []


def test_hostile_platform_text_is_escaped():
    evil = "<script>alert(1)</script>"
    platform = {"headlines": [evil, "h2", "h3"], "descriptions": [evil, "d2"]}
    asset = ROW | {"channel": "google_search", "platform": platform}
    html = render_report({"run_id": "run-1"}, [asset], [], [], "/r/reports")
    assert "<script>" not in html
    assert "<p class='title'>&lt;script&gt;alert(1)&lt;/script&gt; | h2 | h3</p>" in html
    assert html.count("&lt;script&gt;") == 4, "title, description and both listed values"
    for channel, fields in [("display", ["headlines", "long_headline", "descriptions"]),
                            ("facebook", ["primary_text", "headline", "description"]),
                            ("linkedin", ["intro_text", "headline"]), ("x", ["post", "card_headline"]),
                            ("email", ["subject", "preheader", "body"])]:  # fmt: skip
        shown = page(channel, {f: [evil] for f in fields})
        assert shown.find("script") == [], channel
        (ad,) = (text for tag, cls, text in shown.texts if tag == "div" and cls.startswith("ad "))
        assert ad.count(evil) == len(fields), f"{channel}: every field shows as text"
