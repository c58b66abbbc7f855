"""The review web app: gallery, decisions, edits and its safety checks through Starlette's TestClient, and the
whole round in real Chromium (fake generators, real DuckDB)."""

from __future__ import annotations

import csv
import os
import re
import shutil
import threading
import time
from pathlib import Path

import duckdb
import pytest
import uvicorn
from conftest import free_port
from starlette.testclient import TestClient

from adforge.flows import review_app
from adforge.flows.cli import main
from adforge.flows.review_app import create_app
from adforge.storage.db import Store
from adforge.tasks.ad_sets import SOURCES
from adforge.tasks.brand_kits import load_kits
from adforge.tasks.creatives import plan_creatives

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"  # kept for review after the run
ORIGIN = {"origin": "http://testserver"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def rows(db: str, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def status_of(db: str, copy_id: str) -> str:
    return rows(db, "SELECT review_status FROM v_assets WHERE copy_id = ?", [copy_id])[0][0]


def client(sample_db, **options) -> TestClient:
    _, db, settings = sample_db
    return TestClient(create_app(settings, db, reviewer="alice", **options))


def post(web: TestClient, copy_id: str, action: str, **form: str):
    """Post a decision as the gallery's form does: with its CSRF token, from its origin."""
    csrf = CSRF.search(web.get("/", params={"status": "all"}).text)[1]
    data = {"csrf": csrf, "copy_id": copy_id, "action": action, "back": "status=all", **form}
    return web.post("/decide", data=data, headers=ORIGIN)


def test_gallery_lists_pending_ads_with_filters_and_pages(sample_db, monkeypatch: pytest.MonkeyPatch):
    summary, db, _ = sample_db
    web = client(sample_db)
    page = web.get("/")
    assert page.status_code == 200
    assert f"of {summary['copies']}</p>" in page.text
    assert page.text.count('<article class="ad"') == min(summary["copies"], review_app.PAGE_ADS)
    brand, channel, n = rows(db, "SELECT b.brand, c.channel, count(*) FROM copies c JOIN briefs b USING "
                                 "(brief_id, brief_hash) GROUP BY ALL ORDER BY ALL LIMIT 1")[0]  # fmt: skip
    filtered = web.get("/", params={"brand": brand, "channel": channel}).text
    assert filtered.count('<article class="ad"') == n and f"of {n}</p>" in filtered
    assert "no ads match" in web.get("/", params={"status": "approved"}).text
    monkeypatch.setattr(review_app, "PAGE_ADS", 5)
    second = web.get("/", params={"page": 2}).text
    assert "ads 6–10 of" in second and 'rel="prev"' in second and second.count('<article class="ad"') == 5
    creative = re.search(r'src="(/files/[^"]+)"', second)[1]
    assert web.get(creative).headers["content-type"] == "image/png"


def test_approve_reject_and_edit_are_recorded(sample_db):
    _, db, _ = sample_db
    web = client(sample_db)
    first, second, third = (r[0] for r in rows(db, "SELECT copy_id FROM copies ORDER BY 1 LIMIT 3"))
    assert post(web, first, "approve").status_code == 200  # followed the redirect to the gallery
    assert post(web, second, "reject", text="  ").status_code == 200
    refused = post(web, second, "reject", text="invents a discount")
    assert "reject recorded" in refused.text
    brand, headline = rows(db, "SELECT b.brand, c.headline FROM copies c JOIN briefs b USING "
                               "(brief_id, brief_hash) WHERE copy_id = ?", [third])[0]  # fmt: skip
    old = {r[0] for r in rows(db, "SELECT creative_id FROM creatives WHERE copy_id = ?", [third])}
    edited = post(web, third, "edit", field="headline", text=f"{brand}: a fresh look")
    assert "edit recorded" in edited.text and f"{brand}: a fresh look" in edited.text
    sql = "SELECT copy_id, status, reason, reviewer FROM v_review_status WHERE status <> 'pending' ORDER BY 1"
    decided = [(first, "approved", None, "alice"), (second, "rejected", "invents a discount", "alice")]
    assert rows(db, sql) == decided
    assert rows(db, "SELECT field, before, after, reviewer FROM reviews WHERE decision = 'edited'") == [
        ("headline", headline, f"{brand}: a fresh look", "alice")
    ]
    assert rows(db, "SELECT headline FROM copies WHERE copy_id = ?", [third]) == [(f"{brand}: a fresh look",)]
    channel = rows(db, "SELECT channel FROM copies WHERE copy_id = ?", [third])[0][0]
    platform_field = next(s.field for s in SOURCES[channel] if s.copy_field == "headline")
    sql = "SELECT text FROM copy_assets WHERE copy_id = ? AND field = ? ORDER BY position LIMIT 1"
    assert rows(db, sql, [third, platform_field]) == [(f"{brand}: a fresh look",)]
    new = {r[0] for r in rows(db, "SELECT creative_id FROM creatives WHERE copy_id = ?", [third])}
    assert new and not new & old


def test_a_body_edit_keeps_the_creatives(sample_db):
    _, db, _ = sample_db
    web = client(sample_db)
    one, brand = rows(
        db, "SELECT copy_id, brand FROM v_assets WHERE channel = 'linkedin' ORDER BY 1 LIMIT 1"
    )[0]
    drawn = rows(db, "SELECT creative_id FROM creatives WHERE copy_id = ? ORDER BY 1", [one])
    body = f"{brand} keeps every promise it makes, season after season, for everyone who tries it."
    assert "edit recorded" in post(web, one, "edit", field="body", text=body).text
    assert rows(db, "SELECT body FROM copies WHERE copy_id = ?", [one]) == [(body,)]
    sql = "SELECT text FROM copy_assets WHERE copy_id = ? AND field = 'intro_text' AND position = 1"
    assert rows(db, sql, [one]) == [(body,)]
    assert rows(db, "SELECT creative_id FROM creatives WHERE copy_id = ? ORDER BY 1", [one]) == drawn
    assert status_of(db, one) == "pending"


def test_an_edit_that_breaks_a_rule_is_refused_and_stores_nothing(sample_db):
    _, db, _ = sample_db
    web = client(sample_db)
    one = rows(db, "SELECT copy_id FROM copies WHERE channel = 'google_search' ORDER BY 1 LIMIT 1")[0][0]
    before = rows(db, "SELECT * EXCLUDE (embedding) FROM copies WHERE copy_id = ?", [one])
    page = post(web, one, "edit", field="headline", text="x" * 200)
    assert "edit refused: channel_limits" in page.text
    assert rows(db, "SELECT * EXCLUDE (embedding) FROM copies WHERE copy_id = ?", [one]) == before
    assert rows(db, "SELECT count(*) FROM reviews") == [(0,)]


def test_posts_without_the_csrf_token_or_from_another_origin_are_refused(sample_db):
    _, db, _ = sample_db
    web = client(sample_db)
    one = rows(db, "SELECT copy_id FROM copies LIMIT 1")[0][0]
    csrf = CSRF.search(web.get("/").text)[1]
    form = {"copy_id": one, "action": "approve"}
    assert web.post("/decide", data=form, headers=ORIGIN).status_code == 403
    assert web.post("/decide", data={**form, "csrf": "forged"}, headers=ORIGIN).status_code == 403
    other = {"origin": "http://evil.example"}
    assert web.post("/decide", data={**form, "csrf": csrf}, headers=other).status_code == 403
    assert web.post("/decide", data={**form, "csrf": csrf}).status_code == 403  # neither Origin nor Referer
    assert rows(db, "SELECT count(*) FROM reviews") == [(0,)]


def test_read_only_shows_no_forms_and_refuses_decisions(sample_db):
    _, db, _ = sample_db
    web = client(sample_db, read_only=True)
    page = web.get("/")
    assert page.status_code == 200 and '<form class="decision' not in page.text and "read-only" in page.text
    one = rows(db, "SELECT copy_id FROM copies LIMIT 1")[0][0]
    assert web.post("/decide", data={"copy_id": one, "action": "approve"}, headers=ORIGIN).status_code == 403


def test_a_token_is_needed_when_one_is_set(sample_db):
    web = client(sample_db, token="s3cret-token")
    assert web.get("/").status_code == 401
    assert web.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert web.get("/", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    first = web.get("/?token=s3cret-token&status=all", follow_redirects=False)
    assert first.status_code == 303 and "token" not in first.headers["location"]
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert web.get("/").status_code == 200  # the cookie carries it now
    assert "s3cret-token" not in web.get("/").text


def test_a_public_host_needs_a_token(sample_db):
    _, db, _ = sample_db
    assert main(["review", "--host", "0.0.0.0", "--db", db]) == 2


def test_files_are_served_only_when_the_database_names_them(sample_db):
    _, db, _ = sample_db
    web = client(sample_db)
    copy_id, creative_id = rows(db, "SELECT copy_id, creative_id FROM creatives LIMIT 1")[0]
    other = rows(db, "SELECT copy_id FROM copies WHERE copy_id <> ? LIMIT 1", [copy_id])[0][0]
    assert web.get(f"/files/{copy_id}/creative/{creative_id}").status_code == 200
    assert web.get(f"/files/{other}/creative/{creative_id}").status_code == 404  # not that ad's
    assert web.get(f"/files/{copy_id}/creative/creative-0000").status_code == 404
    assert web.get(f"/files/{copy_id}/path/{creative_id}").status_code == 404
    assert web.get(f"/files/{copy_id}/creative/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_a_database_error_is_one_line_on_the_page(sample_db, tmp_path: Path):
    _, db, _ = sample_db
    web = client(sample_db)
    Path(db).rename(tmp_path / "moved.duckdb")
    page = web.get("/")
    assert page.status_code == 503 and "no database yet" in page.text and "Traceback" not in page.text


def test_hostile_text_is_escaped(sample_db):
    _, db, _ = sample_db
    one = rows(db, "SELECT copy_id FROM copies ORDER BY 1 LIMIT 1")[0][0]
    with duckdb.connect(db) as con:
        con.execute("UPDATE copies SET headline = '<script>alert(1)</script>' WHERE copy_id = ?", [one])
    page = client(sample_db).get("/").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def chromium_path() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("ADFORGE_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (Debian package chromium)")
        pytest.skip("chromium is not installed (Debian package chromium)")
    return chromium


@pytest.fixture
def served(sample_db):
    """The app on a free loopback port, served by uvicorn in a thread."""
    _, db, settings = sample_db
    server = uvicorn.Server(uvicorn.Config(create_app(settings, db, reviewer="carol"), port=free_port(),
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}", db, settings
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=flags)
        yield chromium
        chromium.close()


@pytest.mark.slow
def test_a_reviewer_approves_rejects_and_edits_in_a_real_browser(served, browser, tmp_path: Path):
    url, db, settings = served
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/?channel=facebook")
    ads = page.locator("article.ad")
    approve, reject, edit = (ads.nth(i).get_attribute("data-copy-id") for i in range(3))
    page.locator(f"#ad-{approve} form.approve button").click()
    page.wait_for_load_state()
    page.locator(f"#ad-{reject} form.reject input[name=text]").fill("promises too much")
    page.locator(f"#ad-{reject} form.reject button").click()
    page.wait_for_load_state()

    def edit_headline(text: str) -> None:
        page.locator(f"#ad-{edit} details summary").click()
        page.locator(f"#ad-{edit} form.edit select").select_option("headline")
        page.locator(f"#ad-{edit} form.edit textarea").fill(text)
        page.locator(f"#ad-{edit} form.edit button").click()
        page.wait_for_load_state()

    edit_headline("a headline far longer than any facebook headline may be " * 3)
    assert "edit refused: channel_limits" in page.locator(f"#ad-{edit} .note").inner_text()
    brand = rows(db, "SELECT brand FROM v_assets WHERE copy_id = ?", [edit])[0][0]
    edit_headline(f"{brand}: the new one")
    assert "edit recorded" in page.locator(f"#ad-{edit} .note").inner_text()
    page.locator(f"#ad-{edit} form.approve button").click()
    page.wait_for_load_state()
    assert errors == []

    assert rows(db, "SELECT headline FROM copies WHERE copy_id = ?", [edit]) == [(f"{brand}: the new one",)]
    store = Store(db)
    images = [r[0] for r in rows(db, "SELECT image_id FROM images WHERE copy_id = ?", [edit])]
    kits = load_kits(settings.brand_kits)[0]
    planned = plan_creatives(store.images_with_copy(images), settings.creative_font, kits)
    stored = rows(db, "SELECT creative_id FROM creatives WHERE copy_id = ?", [edit])
    assert {r[0] for r in stored} == {j.creative_id for j in planned}
    out = tmp_path / "meta"
    assert main(["export", "--format", "meta", "--to", str(out), "--db", db,
                 "--brand-kits", settings.brand_kits]) == 0  # fmt: skip
    with open(out / "meta.csv", newline="", encoding="utf-8") as f:
        assert sorted(row["Ad Name"] for row in csv.DictReader(f)) == sorted([approve, edit])


@pytest.mark.slow
def test_the_gallery_lays_variants_side_by_side(served, browser):
    url, _, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{url}/?channel=facebook", wait_until="load")
    boxes = page.locator("section.brief").first.locator(".variants").first.locator("article.ad")
    placed = [boxes.nth(i).bounding_box() for i in range(boxes.count())]
    assert len(placed) >= 2
    assert len({round(b["y"]) for b in placed}) == 1, "the variants of a brief and channel share a row"
    assert [b["x"] for b in placed] == sorted(b["x"] for b in placed)
    page.wait_for_function(  # lazy thumbnails in view load; each variant shows at least one
        "n => [...document.querySelectorAll('section.brief:first-of-type img.creative')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= n",
        arg=len(placed),
    )
    OUTPUT.mkdir(exist_ok=True)
    shot = page.screenshot(path=OUTPUT / "review-gallery.png")
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(shot[16:20], "big") == 1400
