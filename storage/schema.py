"""The DuckDB schema as an ordered list of migrations; each runs once and is recorded."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

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
    return applied
