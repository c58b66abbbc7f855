"""`adforge review`: a local web app where a person approves, rejects or edits the stored ads.

Safe by default: it binds to loopback, refuses a public address without a token, checks a CSRF token and
the Origin (or Referer) of every form, and renders untrusted text (briefs, model output) escaped."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import duckdb
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from adforge.flows.redaction import redact
from adforge.flows.settings import Settings
from adforge.storage.artifacts import ArtifactStore
from adforge.storage.db import DatabaseBusy, DatabaseCorrupt, Store, open_existing
from adforge.tasks.ad_sets import SOURCES
from adforge.tasks.brand_kits import load_kits
from adforge.tasks.creatives import plan_creatives, render_creatives
from adforge.tasks.domain import ReviewRow, brand_rules, row
from adforge.tasks.rules import check_copy, copy_text
from adforge.tasks.untrusted import printable

logger = logging.getLogger(__name__)

PAGE_ADS = 48
PORT = 8765  # `adforge review`'s default
FILTERS = ("run", "brand", "campaign", "channel", "status")
STATUSES = ("pending", "approved", "rejected", "all")
EDITABLE = ("headline", "body", "cta")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
COOKIE = "adforge_review"
CSRF_MAX_AGE_S = 12 * 3600
TEMPLATES = Path(__file__).parent / "templates" / "review"
# The gallery: newest run first, then brief, channel and variant, so that siblings sit side by side.
GALLERY = """
    SELECT c.copy_id, c.run_id, c.brief_id, b.campaign_id, b.brand, b.product, b.audience, b.language,
           c.channel, c.variant, c.headline, c.body, c.cta, c.checks, c.relevance, c.readability,
           coalesce(s.status, 'pending') AS review_status, count(*) OVER () AS total, c.locale,
           sg.name AS segment_name
    FROM copies c JOIN briefs b USING (brief_id, brief_hash)
    LEFT JOIN v_review_status s ON s.copy_id = c.copy_id LEFT JOIN runs r ON r.run_id = c.run_id
    LEFT JOIN segments sg ON sg.segment_id = c.segment_id AND sg.segment_hash = c.segment_hash
    WHERE (? IS NULL OR c.run_id = ?) AND (? IS NULL OR b.brand = ?) AND (? IS NULL OR b.campaign_id = ?)
      AND (? IS NULL OR c.channel = ?) AND (? = 'all' OR coalesce(s.status, 'pending') = ?)
    ORDER BY r.started_at DESC NULLS LAST, c.run_id DESC, c.brief_id, c.channel, c.segment_id NULLS FIRST,
             c.locale, c.variant, c.copy_id
    LIMIT ? OFFSET ?
"""
# Diversity is the costly score (a self-join over every copy of a brief and channel): only the page's.
DIVERSITY = """
    SELECT c.copy_id, 1 - max(list_cosine_similarity(c.embedding, o.embedding)) AS diversity
    FROM copies c LEFT JOIN copies o ON o.brief_hash = c.brief_hash AND o.channel = c.channel
        AND o.segment_id IS NOT DISTINCT FROM c.segment_id AND o.locale IS NOT DISTINCT FROM c.locale
        AND o.copy_id <> c.copy_id AND o.score_model = c.score_model
    WHERE list_contains(?, c.copy_id) GROUP BY c.copy_id
"""
ASSETS = "SELECT copy_id, field, position, text FROM copy_assets WHERE list_contains(?, copy_id) ORDER BY ALL"
# Each ad's creatives; an image whose creative could not be drawn is shown as it is.
PICTURES = """
    SELECT k.copy_id, 'creative' AS kind, k.creative_id AS item_id, k.width, k.height, i.image_index
    FROM creatives k JOIN images i USING (image_id) WHERE list_contains(?, k.copy_id)
    UNION ALL
    SELECT copy_id, 'image', image_id, width, height, image_index FROM images i
    WHERE list_contains(?, copy_id) AND NOT EXISTS (SELECT 1 FROM creatives k WHERE k.image_id = i.image_id)
    ORDER BY copy_id, image_index, kind, width DESC
"""
CHOICES = {
    "run": "SELECT DISTINCT run_id FROM copies ORDER BY 1 DESC",
    "brand": "SELECT DISTINCT brand FROM briefs ORDER BY 1",
    "campaign": "SELECT DISTINCT campaign_id FROM briefs WHERE campaign_id IS NOT NULL ORDER BY 1",
    "channel": "SELECT DISTINCT channel FROM copies ORDER BY 1",
}
FILE = {
    "creative": "SELECT path FROM creatives WHERE creative_id = ? AND copy_id = ?",
    "image": "SELECT path FROM images WHERE image_id = ? AND copy_id = ?",
}
EDITED = """
    SELECT c.copy_id, c.run_id, c.brief_hash, c.channel, c.headline, c.body, c.cta, c.image_prompt, c.checks,
           c.prompt, c.segment_id, c.locale, b.brand, b.product, b.audience, b.key_message, b.tone,
           b.banned_words, coalesce(split_part(c.locale, '-', 1), b.language) AS language, b.claims
    FROM copies c JOIN briefs b USING (brief_id, brief_hash) WHERE c.copy_id = ?
"""
SIBLINGS = """
    SELECT headline, body, cta FROM copies WHERE brief_hash = ? AND channel = ? AND copy_id <> ?
    AND segment_id IS NOT DISTINCT FROM ? AND locale IS NOT DISTINCT FROM ?
"""
DB_ERRORS = (duckdb.Error, DatabaseBusy, DatabaseCorrupt, OSError)


class Refused(ValueError):
    """A decision the app does not record: the message says why, on the page."""


class Review:
    """What the routes share: the database, the reviewer, and the secret that signs forms and notes."""

    def __init__(self, settings: Settings, db: str, read_only: bool, reviewer: str):
        self.settings, self.db, self.reviewer = settings, db, reviewer
        self.signer = URLSafeTimedSerializer(secrets.token_bytes(32), salt="adforge-review")
        self.store = None if read_only else Store(db, settings.db_wait_s, settings.lake_data)
        self.artifacts = ArtifactStore(settings.artifacts)
        self.kits = load_kits(settings.brand_kits)[0] if settings.brand_kits else {}
        self.lock = threading.Lock()  # one connection at a time: reads are read-only, writes are not

    def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with self.reading() as read:
            return read(sql, params)

    @contextmanager
    def reading(self) -> Iterator[Callable[[str, list[Any]], list[dict[str, Any]]]]:
        """`with review.reading() as read:` runs queries on one read-only connection (opening one costs
        more than all of a page's queries)."""
        with self.lock:
            con = open_existing(self.db, self.settings.db_wait_s)
            try:
                yield lambda sql, params: con.execute(sql, params).fetch_arrow_table().to_pylist()
            finally:
                con.close()

    def decide(self, copy_id: str, decision: str, reason: str | None = None) -> None:
        if not self.rows("SELECT copy_id FROM copies WHERE copy_id = ?", [copy_id]):
            raise Refused(f"no ad {printable(copy_id)}")
        review = ReviewRow.new(copy_id, decision, self.reviewer, reason)
        assert self.store is not None  # routes that write are refused in read-only mode
        with self.lock:
            self.store.write({"reviews": [review]})

    def edit(self, copy_id: str, field: str, text: str) -> None:
        """Check the edited copy against every rule, draw its creatives again, then store both."""
        found = self.rows(EDITED, [copy_id])
        if not found:
            raise Refused(f"no ad {printable(copy_id)}")
        ad = found[0]
        fields = {f: ad[f] for f in ("headline", "body", "cta", "image_prompt")} | {field: text}
        group = [ad["brief_hash"], ad["channel"], copy_id, ad["segment_id"], ad["locale"]]
        siblings = [copy_text(s) for s in self.rows(SIBLINGS, group)]
        prompt = "\n".join(m["content"] for m in json.loads(ad["prompt"] or "[]"))
        s = self.settings
        languages = frozenset(s.text_model_languages.split(","))
        checks, reason, _ = check_copy(
            fields,
            ad["channel"],
            brand_rules(ad),
            languages,
            siblings,
            s.max_variant_similarity,
            None,
            prompt,
        )
        if reason:
            raise Refused(f"edit refused: {reason}")
        assert self.store is not None
        with self.lock:
            images = self.store.fetch("SELECT image_id FROM images WHERE copy_id = ?", [copy_id])
            rows = self.store.images_with_copy([r["image_id"] for r in images])
        jobs = (
            plan_creatives([r | {field: text} for r in rows], s.creative_font, self.kits)
            if field != "body"
            else []
        )
        creatives, failures = render_creatives.fn(jobs, s.creative_font, self.artifacts, self.kits)
        if failures:
            raise Refused(f"edit refused: {failures[0].reason}")
        stored = json.loads(ad["checks"] or "{}") | checks
        asset = next((src.field for src in SOURCES.get(ad["channel"], ()) if src.copy_field == field), None)
        review = ReviewRow.new(copy_id, "edited", self.reviewer, field=field, before=ad[field], after=text)
        with self.lock:
            drawn = [row(k) | {"run_id": ad["run_id"]} for k in creatives]  # of the run that made the ad
            self.store.edit_copy(copy_id, field, text, json.dumps(stored), asset, drawn, review)


def gallery_query(params: dict[str, str]) -> dict[str, str]:
    """The gallery's filters and page from a query string, blanks left out; status defaults to pending."""
    kept = {k: params[k].strip() for k in (*FILTERS, "page") if params.get(k, "").strip()}
    if kept.get("status") not in STATUSES:
        kept["status"] = "pending"
    return kept


def page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) < 1_000_000 else 1


def group_ads(ads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's ads as briefs, each with its channels, each with its variants in order."""
    briefs: dict[tuple[str, str], dict[str, Any]] = {}
    for ad in ads:
        brief = briefs.setdefault((ad["run_id"], ad["brief_id"]), {"ad": ad, "channels": {}})
        brief["channels"].setdefault(ad["channel"], []).append(ad)
    return list(briefs.values())


def shown_checks(checks: str | None) -> list[tuple[str, str]]:
    """The rules a copy did not pass (failed or refused), as (rule, outcome)."""
    outcomes = json.loads(checks or "{}")
    return [(rule, str(o)) for rule, o in outcomes.items() if not str(o).startswith(("passed", "skipped"))]


def shown_error(e: Exception) -> str:
    """An error on one line, without the secrets a db or URL setting may hold."""
    return printable(redact(str(e)))


def create_app(
    settings: Settings, db: str | None = None, token: str = "", read_only: bool = False, reviewer: str = ""
) -> Starlette:
    """The review app over the db (default: the db setting); with a token, every request must carry it."""
    review = Review(settings, db or settings.db, read_only, reviewer)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page whose own style and script alone run (a nonce per response): no injected one would."""
        nonce = secrets.token_urlsafe(16)
        context |= {"read_only": read_only, "reviewer": reviewer, "nonce": nonce}
        policy = (f"default-src 'self'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
                  "form-action 'self'; frame-ancestors 'none'")  # fmt: skip
        headers = {"Content-Security-Policy": policy}
        return HTMLResponse(env.get_template(name).render(**context), status_code=status, headers=headers)

    def problem(message: str, status: int) -> HTMLResponse:
        return page("error.html", status, message=message)

    def gallery(request: Request) -> Response:
        query = gallery_query(dict(request.query_params))
        number = page_number(query.get("page"))
        f = [query.get(k) for k in FILTERS[:4]]
        params = [x for v in f for x in (v, v)] + [query["status"]] * 2 + [PAGE_ADS, (number - 1) * PAGE_ADS]
        with review.reading() as read:
            ads = read(GALLERY, params)
            ids = [a["copy_id"] for a in ads]
            scores, values, shown = read(DIVERSITY, [ids]), read(ASSETS, [ids]), read(PICTURES, [ids, ids])
            choices = {k: [v for r in read(sql, []) for v in r.values()] for k, sql in CHOICES.items()}
        diversity = {r["copy_id"]: r["diversity"] for r in scores}
        assets: dict[str, dict[str, list[str]]] = {}
        for r in values:
            assets.setdefault(r["copy_id"], {}).setdefault(r["field"], []).append(r["text"])
        pictures: dict[str, list[dict[str, Any]]] = {}
        for r in shown:
            pictures.setdefault(r["copy_id"], []).append(r)
        for ad in ads:
            copy_id = ad["copy_id"]
            ad |= {"diversity": diversity.get(copy_id), "assets": assets.get(copy_id, {}),
                   "pictures": pictures.get(copy_id, []), "failed": shown_checks(ad["checks"])}  # fmt: skip
        total = ads[0]["total"] if ads else 0
        note = read_note(request.query_params.get("note"))
        back = urlencode(query)
        return page(
            "gallery.html", briefs=group_ads(ads), total=total, page=number,
            pages=max(1, -(-total // PAGE_ADS)),
            first=(number - 1) * PAGE_ADS + 1, shown=len(ads), query=query, back=back, note=note,
            choices=choices, statuses=STATUSES, editable=EDITABLE, csrf=review.signer.dumps("csrf"),
            link=lambda **change: "?" + urlencode({**query, **change}),
        )  # fmt: skip

    def read_note(signed: str | None) -> dict[str, Any] | None:
        """A decision's outcome, signed by the app, so that no link can put words on the page."""
        try:
            return review.signer.loads(signed, max_age=600) if signed else None
        except BadSignature:
            return None

    async def decide(request: Request) -> Response:
        if read_only:
            return problem("this review app is read-only: decisions are refused", 403)
        form = await request.form()
        if not same_origin(request) or not valid_csrf(str(form.get("csrf", ""))):
            return problem(
                "refused: the form did not come from this page (CSRF check); reload and retry", 403
            )
        copy_id, action = str(form.get("copy_id", "")), str(form.get("action", ""))
        note = await run_in_threadpool(
            record, copy_id, action, str(form.get("field", "")), str(form.get("text", ""))
        )
        query = gallery_query(dict(parse_qsl(str(form.get("back", "")))))
        target = "/?" + urlencode({**query, "note": review.signer.dumps(note)}) + f"#ad-{copy_id}"
        return RedirectResponse(target, status_code=303)

    def record(copy_id: str, action: str, field: str, text: str) -> dict[str, Any]:
        """Store one decision; returns the note the gallery shows beside the ad."""
        text = text.strip()
        try:
            if action == "approve":
                review.decide(copy_id, "approved")
            elif action == "reject":
                if not text:
                    raise Refused("a rejection needs a reason")
                review.decide(copy_id, "rejected", text)
            elif action == "edit" and field in EDITABLE:
                if not text:
                    raise Refused("an edited field cannot be empty")
                review.edit(copy_id, field, text)
            else:
                raise Refused("unknown decision")
        except Refused as e:
            return {"ad": copy_id, "ok": False, "text": str(e)}
        return {"ad": copy_id, "ok": True, "text": f"{action} recorded"}

    def valid_csrf(value: str) -> bool:
        try:
            return review.signer.loads(value, max_age=CSRF_MAX_AGE_S) == "csrf"
        except BadSignature:
            return False

    def same_origin(request: Request) -> bool:
        """The form was posted from a page of this app: its Origin, else its Referer, names our host."""
        source = request.headers.get("origin") or request.headers.get("referer")
        return bool(source) and urlsplit(source).netloc == request.headers.get("host")

    def artifact(request: Request) -> Response:
        kind, item_id, copy_id = (request.path_params[k] for k in ("kind", "item_id", "copy_id"))
        found = review.rows(FILE[kind], [item_id, copy_id]) if kind in FILE else []
        if not found:
            return problem("no such file of this ad", 404)
        data = review.artifacts.read(found[0]["path"])
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    async def guard(request: Request, call_next: RequestResponseEndpoint) -> Response:
        """With a token: every request carries it (cookie or Bearer); `?token=` sets the cookie once."""
        given = request.query_params.get("token")
        if token and given is not None and secrets.compare_digest(given.encode(), token.encode()):
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            back = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
            back.set_cookie(
                COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https"
            )
            return back
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        carried = request.cookies.get(COOKIE) or bearer
        if token and not secrets.compare_digest(carried.encode(), token.encode()):
            return problem("this review app needs its token: open the link with ?token=… you were given", 401)
        try:
            response = await call_next(request)
        except DB_ERRORS as e:
            logger.warning(f"review: {shown_error(e)}")
            return problem(f"the database could not be used: {shown_error(e)}", 503)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def failed(request: Request, e: Exception) -> Response:
        logger.error(f"review: {shown_error(e)}")
        return problem(f"something went wrong: {shown_error(e)}", 500)

    routes = [
        Route("/", gallery),
        Route("/decide", decide, methods=["POST"]),
        Route("/files/{copy_id}/{kind}/{item_id}", artifact),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=guard)],
        exception_handlers={Exception: failed},
    )  # fmt: skip


def check_host(host: str, token: str) -> None:
    """Refuse an address other machines reach unless requests must carry a token."""
    if host not in LOCAL_HOSTS and not token:
        raise ValueError(
            f"--host {host} is reachable from other machines: give --token or ADFORGE_REVIEW_TOKEN"
        )


def serve(
    settings: Settings, db: str | None, host: str, port: int, token: str, read_only: bool, reviewer: str
) -> None:
    """Run the app with uvicorn; an address other machines reach needs a token. No access log: a first
    visit's link carries the token."""
    import uvicorn

    check_host(host, token)
    app = create_app(settings, db, token, read_only, reviewer)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")


def run_link(run_id: str) -> str:
    """The gallery of one run's pending ads, on `adforge review`'s default address."""
    return f"http://127.0.0.1:{PORT}/?{urlencode({'run': run_id, 'status': 'pending'})}"
