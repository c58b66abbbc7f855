"""The DuckDB schema as an ordered list of migrations; each runs once and is recorded."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import duckdb

from adforge.storage.platform_views import PLATFORM_VIEWS, platform_columns
from adforge.storage.schema_docs import DOCS

MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = []


def migration(fn: Callable[[duckdb.DuckDBPyConnection], None]) -> Callable:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            flow_run_id VARCHAR,
            status VARCHAR NOT NULL,  -- running, completed, completed_with_failures, failed
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            sources VARCHAR[],
            text_model VARCHAR,
            image_model VARCHAR,
            seed BIGINT,
            settings JSON,
            briefs_read INTEGER,
            briefs_rejected INTEGER,
            copies INTEGER,
            images INTEGER,
            failures INTEGER,
            output_tokens BIGINT,
            tokens_per_s DOUBLE,
            images_per_s DOUBLE,
            wall_s DOUBLE,
            error VARCHAR
        );
        CREATE TABLE briefs (
            brief_id VARCHAR NOT NULL,
            brief_hash VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            campaign_id VARCHAR,
            brand VARCHAR NOT NULL,
            product VARCHAR NOT NULL,
            audience VARCHAR NOT NULL,
            key_message VARCHAR NOT NULL,
            tone VARCHAR NOT NULL,
            channels VARCHAR[] NOT NULL,
            variants INTEGER NOT NULL,
            images_per_copy INTEGER NOT NULL,
            banned_words VARCHAR[] NOT NULL,
            language VARCHAR NOT NULL,
            metadata JSON,
            source_file VARCHAR,
            source_row BIGINT,
            created_at TIMESTAMPTZ DEFAULT current_timestamp,
            PRIMARY KEY (brief_id, brief_hash)
        );
        CREATE TABLE rejected_briefs (
            run_id VARCHAR NOT NULL,
            brief_id VARCHAR,
            source_file VARCHAR NOT NULL,
            source_row BIGINT NOT NULL,
            reason VARCHAR NOT NULL,
            created_at TIMESTAMPTZ DEFAULT current_timestamp,
            PRIMARY KEY (run_id, source_file, source_row)
        );
        CREATE TABLE copies (
            copy_id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            brief_id VARCHAR NOT NULL,
            brief_hash VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            variant INTEGER NOT NULL,
            headline VARCHAR NOT NULL,
            body VARCHAR NOT NULL,
            cta VARCHAR NOT NULL,
            image_prompt VARCHAR NOT NULL,
            attempts INTEGER NOT NULL,
            seed BIGINT NOT NULL,
            text_model VARCHAR NOT NULL,
            sampling JSON NOT NULL,
            prompt VARCHAR NOT NULL,
            prompt_tokens INTEGER,
            output_tokens INTEGER,
            created_at TIMESTAMPTZ DEFAULT current_timestamp
        );
        CREATE TABLE images (
            image_id VARCHAR PRIMARY KEY,
            copy_id VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            brief_id VARCHAR NOT NULL,
            image_index INTEGER NOT NULL,
            prompt VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            steps INTEGER NOT NULL,
            guidance_scale DOUBLE NOT NULL,
            seed BIGINT NOT NULL,
            image_model VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL,
            bytes BIGINT NOT NULL,
            created_at TIMESTAMPTZ DEFAULT current_timestamp
        );
        CREATE TABLE failures (
            run_id VARCHAR NOT NULL,
            stage VARCHAR NOT NULL,  -- copy or image
            item_id VARCHAR NOT NULL,  -- the copy_id or image_id that could not be made
            brief_id VARCHAR,
            channel VARCHAR,
            variant INTEGER,
            reason VARCHAR NOT NULL,
            attempts INTEGER NOT NULL,
            created_at TIMESTAMPTZ DEFAULT current_timestamp,
            PRIMARY KEY (run_id, item_id)
        );
        CREATE TABLE run_stages (
            run_id VARCHAR NOT NULL,
            stage VARCHAR NOT NULL,  -- read, copy, image
            started_at TIMESTAMPTZ NOT NULL,
            seconds DOUBLE NOT NULL,
            items INTEGER NOT NULL,
            output_tokens BIGINT,
            PRIMARY KEY (run_id, stage)
        );
    """)


@migration
def m002_run_process(con: duckdb.DuckDBPyConnection) -> None:
    # Which process ran a run, so that a later run can tell a dead run from a live one.
    con.execute("ALTER TABLE runs ADD COLUMN host VARCHAR")
    con.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")


@migration
def m003_ingestion(con: duckdb.DuckDBPyConnection) -> None:
    # The ledger of brief files already processed.
    con.execute("""
        CREATE TABLE ingested_files (
            file_hash VARCHAR NOT NULL,
            settings_hash VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            bytes BIGINT NOT NULL,
            briefs INTEGER NOT NULL,
            rejected INTEGER NOT NULL,
            run_id VARCHAR NOT NULL,
            ingested_at TIMESTAMPTZ DEFAULT current_timestamp,
            PRIMARY KEY (file_hash, settings_hash)
        );
        ALTER TABLE runs ADD COLUMN files_new INTEGER;
        ALTER TABLE runs ADD COLUMN files_skipped INTEGER;
    """)


@migration
def m004_creatives_and_views(con: duckdb.DuckDBPyConnection) -> None:
    # Finished creatives: image + headline + call to action in the channel's format.
    con.execute("""
        CREATE TABLE creatives (
            creative_id VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,
            copy_id VARCHAR NOT NULL,
            image_id VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            brief_id VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            font VARCHAR NOT NULL,
            font_size INTEGER NOT NULL,
            headline_lines INTEGER NOT NULL,
            backing_opacity DOUBLE NOT NULL,
            contrast_ratio DOUBLE NOT NULL,
            sha256 VARCHAR NOT NULL,
            bytes BIGINT NOT NULL,
            created_at TIMESTAMPTZ DEFAULT current_timestamp
        );
        ALTER TABLE runs ADD COLUMN creatives INTEGER;
    """)


@migration
def m005_copy_checks(con: duckdb.DuckDBPyConnection) -> None:
    # Which rules each copy was checked against and passed, and how alike it is to its sibling variants.
    con.execute("ALTER TABLE copies ADD COLUMN checks JSON; ALTER TABLE copies ADD COLUMN similarity DOUBLE")


@migration
def m006_failure_kind(con: duckdb.DuckDBPyConnection) -> None:
    # Why an item failed, as a value the pipeline decides retries by (reason stays the human text).
    con.execute("""
        ALTER TABLE failures ADD COLUMN kind VARCHAR;
        UPDATE failures SET kind = CASE
            WHEN reason LIKE 'engine error%' THEN 'engine_error'
            WHEN reason LIKE 'prompt is %' THEN 'prompt_too_long'
            WHEN reason LIKE 'creative:%' THEN 'creative'
            ELSE 'rule' END;
    """)


@migration
def m007_rejected_files(con: duckdb.DuckDBPyConnection) -> None:
    # Brief files that could not be used at all; they stay out of the ledger, so a later run tries again.
    con.execute("""
        CREATE TABLE rejected_files (
            run_id VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            file_hash VARCHAR,
            reason VARCHAR NOT NULL,
            created_at TIMESTAMPTZ DEFAULT current_timestamp,
            PRIMARY KEY (run_id, path)
        );
        ALTER TABLE runs ADD COLUMN files_rejected INTEGER;
    """)


@migration
def m008_scorecard(con: duckdb.DuckDBPyConnection) -> None:
    # Claims a brief allows; each copy's scores, and its embedding, from which v_copy_scores reads diversity.
    con.execute("""
        ALTER TABLE briefs ADD COLUMN claims VARCHAR[];
        ALTER TABLE copies ADD COLUMN relevance DOUBLE;
        ALTER TABLE copies ADD COLUMN readability DOUBLE;
        ALTER TABLE copies ADD COLUMN score_model VARCHAR;
        ALTER TABLE copies ADD COLUMN embedding FLOAT[];
        ALTER TABLE copies ADD COLUMN candidates INTEGER;
    """)


@migration
def m009_brand_kits(con: duckdb.DuckDBPyConnection) -> None:
    # Which brand kit a creative was drawn with, its button's colour and the button label's contrast.
    con.execute("""
        ALTER TABLE creatives ADD COLUMN brand_kit VARCHAR;
        ALTER TABLE creatives ADD COLUMN button_color VARCHAR;
        ALTER TABLE creatives ADD COLUMN cta_contrast DOUBLE;
    """)


@migration
def m010_platform_assets(con: duckdb.DuckDBPyConnection) -> None:
    # Each platform field's values of an ad: a search ad's headlines 1 to 15, a Meta ad's description, ...
    con.execute("""
        CREATE TABLE copy_assets (
            copy_id VARCHAR NOT NULL,
            field VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            text VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            created_at TIMESTAMPTZ DEFAULT current_timestamp,
            PRIMARY KEY (copy_id, field, position)
        );
    """)


@migration
def m011_reviews(con: duckdb.DuckDBPyConnection) -> None:
    # A person's decisions on ads; v_review_status has each ad's current status.
    con.execute("""
        CREATE TABLE reviews (
            review_id VARCHAR PRIMARY KEY,
            item_id VARCHAR NOT NULL,
            decision VARCHAR NOT NULL,  -- approved, rejected, edited
            reason VARCHAR,
            field VARCHAR,
            before VARCHAR,
            after VARCHAR,
            reviewer VARCHAR NOT NULL,
            created_at TIMESTAMPTZ DEFAULT current_timestamp
        );
    """)


@migration
def m012_segments_and_locales(con: duckdb.DuckDBPyConnection) -> None:
    # Ads per audience segment and locale: both on copies (and in their ids) and on copy failures.
    con.execute("""
        CREATE TABLE segments (
            segment_id VARCHAR NOT NULL,
            segment_hash VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            description VARCHAR NOT NULL,
            attributes JSON,
            run_id VARCHAR NOT NULL,
            created_at TIMESTAMPTZ DEFAULT current_timestamp,
            PRIMARY KEY (segment_id, segment_hash)
        );
        ALTER TABLE copies ADD COLUMN segment_id VARCHAR;
        ALTER TABLE copies ADD COLUMN segment_hash VARCHAR;
        ALTER TABLE copies ADD COLUMN locale VARCHAR;
        ALTER TABLE failures ADD COLUMN brief_hash VARCHAR;
        ALTER TABLE failures ADD COLUMN segment_id VARCHAR;
        ALTER TABLE failures ADD COLUMN locale VARCHAR;
        UPDATE copies SET locale = b.language FROM briefs b
        WHERE copies.brief_id = b.brief_id AND copies.brief_hash = b.brief_hash;
    """)


def _platform_view(name: str, channels: tuple[str, ...], fields: tuple[tuple[str, str, int], ...]) -> str:
    columns = ",\n".join(
        f"max(a.text) FILTER (a.field = '{field}' AND a.position = {position}) AS {column}"
        for column, field, position in platform_columns(fields)
    )
    where = ", ".join(f"'{c}'" for c in channels)
    return f"""
        CREATE OR REPLACE VIEW {name} AS
        SELECT c.copy_id, c.run_id, c.brief_id, b.campaign_id, b.brand, c.channel, c.variant,
        {columns},
        c.cta, c.created_at
        FROM copies c
        JOIN briefs b USING (brief_id, brief_hash)
        JOIN copy_assets a USING (copy_id)
        WHERE c.channel IN ({where})
        GROUP BY c.copy_id, c.run_id, c.brief_id, b.campaign_id, b.brand, c.channel, c.variant, c.cta,
                 c.created_at;
    """


# Views hold no data: they are defined again whenever a migration has run or one differs from these.
VIEWS = (
    "".join(_platform_view(*view) for view in PLATFORM_VIEWS)
    + """
        CREATE OR REPLACE VIEW v_review_status AS
        SELECT c.copy_id, c.run_id, coalesce(r.status, 'pending') AS status, r.reason, r.reviewer,
               r.decided_at
        FROM copies c
        LEFT JOIN (
            SELECT item_id AS copy_id, arg_max(decision, created_at) AS status,
                   arg_max(reason, created_at) AS reason, arg_max(reviewer, created_at) AS reviewer,
                   max(created_at) AS decided_at
            FROM reviews WHERE decision IN ('approved', 'rejected') GROUP BY item_id
        ) r USING (copy_id);
        CREATE OR REPLACE VIEW v_copy_scores AS
        SELECT c.copy_id, c.relevance, c.readability,
               1 - max(list_cosine_similarity(c.embedding, o.embedding)) AS diversity, c.score_model
        FROM copies c
        LEFT JOIN copies o ON o.brief_hash = c.brief_hash AND o.channel = c.channel
            AND o.segment_id IS NOT DISTINCT FROM c.segment_id AND o.locale IS NOT DISTINCT FROM c.locale
            AND o.copy_id <> c.copy_id AND o.score_model = c.score_model
        GROUP BY c.copy_id, c.relevance, c.readability, c.score_model;
        CREATE OR REPLACE VIEW v_assets AS
        SELECT c.copy_id, c.run_id, c.brief_id, b.campaign_id, b.brand, b.product, b.audience, b.tone,
               b.language, c.channel, c.variant, c.headline, c.body, c.cta, c.image_prompt, c.text_model,
               c.attempts, c.checks, c.similarity, c.relevance, s.diversity, c.readability,
               coalesce(i.images, 0) AS images, coalesce(i.image_paths, []::VARCHAR[]) AS image_paths,
               coalesce(k.creative_paths, []::VARCHAR[]) AS creative_paths, c.created_at,
               coalesce(rs.status, 'pending') AS review_status, c.segment_id, sg.name AS segment_name,
               c.locale
        FROM copies c
        JOIN briefs b USING (brief_id, brief_hash)
        LEFT JOIN v_copy_scores s USING (copy_id)
        LEFT JOIN v_review_status rs USING (copy_id)
        LEFT JOIN segments sg USING (segment_id, segment_hash)
        LEFT JOIN (
            SELECT copy_id, count(*) AS images, list(path ORDER BY image_index) AS image_paths
            FROM images GROUP BY copy_id
        ) i USING (copy_id)
        LEFT JOIN (
            SELECT k.copy_id, list(k.path ORDER BY i.image_index) AS creative_paths
            FROM creatives k JOIN images i USING (image_id) GROUP BY k.copy_id
        ) k USING (copy_id);
        CREATE OR REPLACE VIEW v_run_summary AS
        SELECT r.run_id, r.status, r.started_at, r.finished_at, r.wall_s, r.files_new, r.files_skipped,
               r.files_rejected, r.briefs_read, r.briefs_rejected, r.copies, r.images, r.creatives,
               r.failures, r.output_tokens, r.tokens_per_s, r.images_per_s, s.read_s, s.load_text_model_s,
               s.copy_s, s.load_image_model_s, s.image_s, s.creative_s, r.text_model, r.image_model, r.error
        FROM runs r
        LEFT JOIN (
            SELECT run_id,
                   sum(seconds) FILTER (stage = 'read') AS read_s,
                   sum(seconds) FILTER (stage = 'load_text_model') AS load_text_model_s,
                   sum(seconds) FILTER (stage = 'copy') AS copy_s,
                   sum(seconds) FILTER (stage = 'load_image_model') AS load_image_model_s,
                   sum(seconds) FILTER (stage = 'image') AS image_s,
                   sum(seconds) FILTER (stage = 'creative') AS creative_s
            FROM run_stages GROUP BY run_id
        ) s USING (run_id);
        CREATE OR REPLACE VIEW v_coverage AS
        WITH current AS (  -- each brief's latest version
            SELECT brief_id, arg_max(brief_hash, created_at) AS brief_hash, arg_max(campaign_id, created_at)
                   AS campaign_id
            FROM briefs GROUP BY brief_id
        ), ads AS (
            SELECT c.brief_id, c.brief_hash, c.segment_id, c.locale, c.channel,
                   coalesce(rs.status, 'pending') AS status, NULL AS reason
            FROM copies c LEFT JOIN v_review_status rs USING (copy_id)
            UNION ALL
            SELECT brief_id, brief_hash, segment_id, locale, channel, 'failed', arg_max(reason, created_at)
            FROM failures
            WHERE stage = 'copy' AND item_id NOT IN (SELECT copy_id FROM copies)
            GROUP BY item_id, brief_id, brief_hash, segment_id, locale, channel
        )
        SELECT cur.campaign_id, a.brief_id, a.segment_id, sg.name AS segment_name, a.locale, a.channel,
               count(*) FILTER (a.status = 'approved') AS approved,
               count(*) FILTER (a.status = 'pending') AS pending,
               count(*) FILTER (a.status = 'rejected') AS rejected,
               count(*) FILTER (a.status = 'failed') AS failed,
               CASE WHEN count(*) FILTER (a.status = 'approved') > 0 THEN 'approved'
                    WHEN count(*) FILTER (a.status = 'pending') > 0 THEN 'awaiting_review'
                    WHEN count(*) FILTER (a.status = 'rejected') > 0 THEN 'rejected'
                    ELSE 'failed' END AS coverage,
               list(DISTINCT a.reason ORDER BY a.reason) FILTER (a.reason IS NOT NULL) AS failure_reasons
        FROM ads a
        JOIN current cur USING (brief_id, brief_hash)
        LEFT JOIN (SELECT segment_id, arg_max(name, created_at) AS name FROM segments GROUP BY segment_id) sg
            USING (segment_id)
        GROUP BY ALL;
        CREATE OR REPLACE VIEW v_failures AS
        SELECT f.run_id, r.started_at AS run_started_at, f.stage, f.item_id, f.brief_id, f.channel,
               f.variant, split_part(f.reason, ':', 1) AS reason_kind, f.reason, f.attempts, f.kind,
               f.item_id IN (SELECT copy_id FROM copies UNION ALL SELECT image_id FROM images
                             UNION ALL SELECT creative_id FROM creatives) AS resolved,
               f.created_at, f.segment_id, f.locale
        FROM failures f
        LEFT JOIN runs r USING (run_id);
"""
)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this database has not seen yet; returns their names."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT current_timestamp)"
    )
    done = {name for (name,) in con.execute("SELECT name FROM schema_migrations").fetchall()}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ not in done:
            con.execute("BEGIN")
            fn(con)
            con.execute("INSERT INTO schema_migrations (name) VALUES (?)", [fn.__name__])
            con.execute("COMMIT")
            applied.append(fn.__name__)
    if applied or not views_intact(con):
        con.execute(VIEWS)
    comment(con)
    return applied


def views_intact(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the current database's views are the pipeline's own (anyone who can write may replace one)."""
    have = dict(con.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE database_name = current_database() AND NOT internal"
    ).fetchall())  # fmt: skip
    return all(have.get(name) == sql for name, sql in pipeline_views().items())


@cache
def pipeline_views() -> dict[str, str]:
    """Each view's definition as DuckDB stores it, from an in-memory database with every migration."""
    with duckdb.connect() as con:
        for fn in MIGRATIONS:
            fn(con)
        con.execute(VIEWS)
        return dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())


def comment(con: duckdb.DuckDBPyConnection, view_columns: bool = True) -> None:
    """Store DOCS as table and column comments, so that any DuckDB client shows them (DuckLake
    keeps no comments on a view's columns)."""
    have = dict(con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall())
    have |= dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
    columns = {(t, c): doc for t, c, doc in con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns()"
    ).fetchall()}  # fmt: skip
    for table, (doc, column_docs) in DOCS.items():
        kind = "VIEW" if table.startswith("v_") else "TABLE"
        if have.get(table) != doc:
            con.execute(f"COMMENT ON {kind} {table} IS {sql_literal(doc)}")
        for column, text in column_docs.items():
            if kind == "VIEW" and not view_columns:
                break
            if columns.get((table, column)) != text:
                con.execute(f"COMMENT ON COLUMN {table}.{column} IS {sql_literal(text)}")


def sql_literal(text: str) -> str:
    """A SQL string literal, for statements that take no parameters (COMMENT, ATTACH, CREATE SECRET)."""
    return "'" + text.replace("'", "''") + "'"


def schema_markdown(con: duckdb.DuckDBPyConnection) -> str:
    """The schema as Markdown: every table and view with its columns, types and meaning."""
    types = {(t, c): ty for t, c, ty in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() ORDER BY column_index"
    ).fetchall()}  # fmt: skip
    lines = [
        "# Database schema",
        "",
        "Generated by `adforge schema` from the migrations in `storage/schema.py` and the descriptions in",
        "`storage/schema_docs.py`; the same descriptions are stored as DuckDB comments",
        "(`select table_name, column_name, comment from duckdb_columns()`).",
    ]
    for table, (doc, column_docs) in DOCS.items():
        kind = "view" if table.startswith("v_") else "table"
        lines += ["", f"## `{table}` ({kind})", "", doc, "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c}` | {types[(table, c)]} | {text} |" for c, text in column_docs.items()]
    return "\n".join(lines) + "\n"
