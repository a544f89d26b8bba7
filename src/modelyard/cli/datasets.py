"""`modelyard dataset ...`: create, commit, import, inspect and snapshot datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from modelyard.cli._common import client, console, show, wants_json

app = typer.Typer(help="Typed, versioned datasets and training snapshots.", no_args_is_help=True)

COMMIT_COLUMNS = ["version", "operation", "row_count", "rows_added", "rows_removed", "tags",
                  "author", "created_at", "message", "collected"]
SNAPSHOT_COLUMNS = ["id", "dataset", "version", "status", "seed", "split_sizes", "hash"]


def _tags(tags: str) -> list[str]:
    return [t.strip() for t in tags.split(",") if t.strip()]


@app.command("create")
def create(ctx: typer.Context, name: str,
           type_: str = typer.Option(..., "--type", "-t",
                                     help="image_classification | text_intent | tabular | generic"),
           config: str = typer.Option("{}", help='type config as JSON, e.g. tabular: '
                                      '{"columns": {"x": "float", "y": "string"}, "target": "y"}'),
           description: str = "") -> None:
    """Create an empty dataset of a type."""
    try:
        parsed = json.loads(config)
    except ValueError as e:
        raise typer.BadParameter(f"not JSON: {e}", param_hint="--config") from None
    show(ctx, client(ctx).datasets.create(name, type_, parsed, description))


@app.command("list")
def list_(ctx: typer.Context, limit: int = 50, page_token: str = typer.Option(None)) -> None:
    page = client(ctx).datasets.list(limit, page_token)
    show(ctx, page["items"], ["name", "type", "head_version", "created_by", "created_at"],
         title="datasets")
    if page.get("next_page_token") and not wants_json(ctx):
        console.print(f"more: --page-token {page['next_page_token']}")


@app.command("show")
def show_(ctx: typer.Context, name: str, rows: int = typer.Option(5, help="rows to preview")) -> None:
    """A dataset, its newest version's statistics and a few rows."""
    c = client(ctx)
    ds = c.datasets.get(name)
    show(ctx, ds, title=name)
    if ds.get("head_version") and not wants_json(ctx):
        show(ctx, c.datasets.stats(name), title="statistics")
        preview = c.datasets.rows(name, limit=rows)
        if preview:
            cols = [k for k in preview[0] if k != "row_hash"]
            show(ctx, preview, cols, title="rows")


@app.command("commit")
def commit(ctx: typer.Context, name: str,
           file: Annotated[Path | None, typer.Argument(
               exists=True, dir_okay=True, readable=True,
               help="a .csv/.json/.jsonl/.parquet file, or a folder of images with one "
               "sub-folder per class (hidden files skipped); not given with --mode delete")] = None,
           message: str = typer.Option("", "--message", "-m"),
           tags: str = typer.Option("", help="comma-separated tags"),
           mode: str = typer.Option(
               "append", help="append: add FILE's rows | overwrite: FILE's rows become the "
               "version | delete: remove the rows matching --where or --row-id (no FILE) | "
               "replace: remove those rows and add FILE's, as one version"),
           where: str = typer.Option(None, help="delete/replace: one SQL condition over the "
                                     "columns, e.g. \"label = 'cat' AND width < 8\""),
           row_id: list[str] = typer.Option(None, "--row-id", help="delete/replace: a row id "
                                            "(from `dataset show`); repeat for more"),
           format_: str = typer.Option(None, "--format", help="csv|json|jsonl|parquet (default: "
                                       "from the file suffix)")) -> None:
    """Commit rows as one new version: append, overwrite, delete or replace.

    Files stream with a progress bar. In a CSV, a multi-label column (text_intent's `labels`)
    holds the labels separated by `|`: `hello there,greeting|smalltalk`.
    """
    if mode not in ("append", "overwrite", "delete", "replace"):
        raise typer.BadParameter("use append, overwrite, delete or replace", param_hint="--mode")
    if (mode == "delete") == (file is not None):
        raise typer.BadParameter("--mode delete takes no FILE; every other mode needs one",
                                 param_hint="FILE")
    if mode in ("delete", "replace") and bool(where) == bool(row_id):
        raise typer.BadParameter(f"--mode {mode} needs --where or --row-id (one of them)",
                                 param_hint="--where")
    if mode in ("append", "overwrite") and (where or row_id):
        raise typer.BadParameter("--where and --row-id only go with --mode delete or replace",
                                 param_hint="--where")
    c = client(ctx)
    ids = list(row_id) if row_id else None
    if file is None:
        _commit(ctx, c.datasets.delete_rows(name, where, ids, message, _tags(tags)))
        return
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, disable=wants_json(ctx)) as bar:
        if file.is_dir():
            task = bar.add_task(f"upload {file.name}", total=None)
            out = c.datasets.upload_folder(name, file, mode, message, _tags(tags),
                                           progress=lambda n: bar.advance(task, n),
                                           where=where, row_ids=ids)
        else:
            task = bar.add_task(f"upload {file.name}", total=file.stat().st_size)
            out = c.datasets.upload_file(name, file, format_, mode, message, _tags(tags),
                                         progress=lambda n: bar.advance(task, n),
                                         where=where, row_ids=ids)
    _commit(ctx, out)


@app.command("import")
def import_(ctx: typer.Context, name: str,
            source: str = typer.Argument(..., help="sklearn:digits|iris|wine|breast_cancer or "
                                         "chatterbot:intents"),
            message: str = typer.Option("", "--message", "-m"),
            tags: str = typer.Option("", help="comma-separated tags")) -> None:
    """Create NAME if needed and commit a built-in data set into it."""
    _commit(ctx, client(ctx).datasets.import_builtin(name, source, message, _tags(tags)))


@app.command("versions")
def versions(ctx: typer.Context, name: str) -> None:
    """Every version; `collected` dates those whose rows garbage collection removed (their
    statistics remain, but they can no longer be read, diffed or snapshotted)."""
    rows = client(ctx).datasets.versions(name)
    if not wants_json(ctx):
        rows = [{**r, "collected": f"yes, {r['collected_at'][:10]}" if r.get("collected_at")
                 else ""} for r in rows]
    show(ctx, rows, COMMIT_COLUMNS, title=f"{name} versions")


@app.command("stats")
def stats(ctx: typer.Context, name: str, version: int = typer.Option(None)) -> None:
    s = client(ctx).datasets.stats(name, version)
    if wants_json(ctx):
        show(ctx, s)
        return
    show(ctx, {k: v for k, v in s.items() if k != "label_counts"}, title=f"{name} statistics")
    labels = [{"label": k, "rows": v} for k, v in s.get("label_counts", {}).items()]
    if labels:
        show(ctx, labels, ["label", "rows"], title="labels")


@app.command("diff")
def diff(ctx: typer.Context, name: str, from_version: int, to_version: int) -> None:
    """Rows added/removed and label changes between two versions."""
    d = client(ctx).datasets.diff(name, from_version, to_version)
    if wants_json(ctx):
        show(ctx, d)
        return
    show(ctx, {k: d[k] for k in ("from_version", "to_version", "rows_added", "rows_removed",
                                 "rows_unchanged")}, title=f"{name} diff")
    rows = [{"label": k, "from": d["label_counts_from"].get(k, 0),
             "to": d["label_counts_to"].get(k, 0), "change": v}
            for k, v in d["label_change"].items()]
    if rows:
        show(ctx, rows, ["label", "from", "to", "change"], title="label changes")


@app.command("snapshot")
def snapshot(ctx: typer.Context, name: str, version: int = typer.Option(None),
             cutoff: str = typer.Option(None, help="ISO time: newest commit at or before it"),
             all_of: str = typer.Option("", help="comma-separated tags a commit must all have"),
             any_of: str = typer.Option("", help="comma-separated tags, at least one"),
             seed: int = 0,
             fractions: str = typer.Option("0.8,0.1,0.1", help="train,validation,test")) -> None:
    """Pin a version with seeded train/validation/test splits (reused when identical)."""
    try:
        parts = [float(x) for x in fractions.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3:
        raise typer.BadParameter("give three fractions: train,validation,test")
    snap = client(ctx).datasets.snapshot(
        name, version, cutoff, _tags(all_of), _tags(any_of), seed,
        dict(zip(("train", "validation", "test"), parts, strict=True)))
    show(ctx, {k: snap[k] for k in ("id", "dataset", "version", "status", "hash", "seed",
                                    "split_sizes", "reused")} if not wants_json(ctx) else snap)


@app.command("snapshots")
def snapshots(ctx: typer.Context, name: str) -> None:
    show(ctx, client(ctx).datasets.list_snapshots(name), SNAPSHOT_COLUMNS, title=f"{name} snapshots")


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Soft-delete a dataset (its name is freed; data stays until garbage collection)."""
    client(ctx).datasets.delete(name)
    if not wants_json(ctx):
        console.print(f"deleted {name}")


@app.command("gc")
def gc(ctx: typer.Context, retention_days: float = typer.Option(7.0, help="keep versions newer "
                                                                "than this")) -> None:
    """Collect rows of old versions no lineage references; purge soft-deleted datasets."""
    show(ctx, client(ctx).datasets.gc(retention_days))


def _commit(ctx: typer.Context, out: dict[str, Any]) -> None:
    show(ctx, {k: out[k] for k in ("dataset", "version", "operation", "row_count", "rows_added",
                                   "rows_removed", "content_hash")} if not wants_json(ctx) else out)
