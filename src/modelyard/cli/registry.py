"""`modelyard model` commands: models, versions, aliases."""

from __future__ import annotations

from typing import Any

import typer

from modelyard.cli._common import client, console, show

app = typer.Typer(help="model registry: models, versions, aliases", no_args_is_help=True)

_VERSION_COLUMNS = ["version", "aliases", "framework", "metrics", "created_by", "created_at"]


def _aliases_text(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("created_at", "moved_at"):
        if isinstance(out.get(key), str):
            out[key] = str(out[key])[:16].replace("T", " ")
    if isinstance(out.get("aliases"), list):
        out["aliases"] = ", ".join(str(a) for a in out["aliases"])
    elif isinstance(out.get("aliases"), dict):
        out["aliases"] = ", ".join(f"{k}→{v}" for k, v in out["aliases"].items())
    return out


@app.command("list")
def list_models(ctx: typer.Context) -> None:
    """Models of the project, with their latest version and aliases."""
    rows = client(ctx).registry.list_models()
    show(ctx, [_aliases_text(r) for r in rows] if not _json(ctx) else rows,
         ["name", "latest_version", "aliases", "created_by", "created_at"], title="models")


@app.command("show")
def show_model(ctx: typer.Context, ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS")) -> None:
    """One model version (the latest when no version or alias is given)."""
    v = client(ctx).registry.resolve(ref)
    show(ctx, v, title=f"{v['model']}@{v['version']}")


@app.command("versions")
def versions(ctx: typer.Context, name: str) -> None:
    """Every version of a model."""
    rows = client(ctx).registry.list_versions(name)
    show(ctx, [_aliases_text(r) for r in rows] if not _json(ctx) else rows, _VERSION_COLUMNS,
         title=f"versions of {name}")


@app.command("alias")
def alias(ctx: typer.Context, name: str, alias_name: str = typer.Argument(..., metavar="ALIAS"),
          version: int = typer.Argument(..., min=1)) -> None:
    """Point ALIAS (e.g. production) of model NAME at VERSION; the move is recorded."""
    move = client(ctx).registry.set_alias(name, alias_name, version)
    if _json(ctx):
        show(ctx, move)
    else:
        before = move["from_version"] if move["from_version"] is not None else "-"
        console.print(f"{name}@{alias_name}: {before} → {move['to_version']}")


@app.command("history")
def history(ctx: typer.Context, name: str, alias_name: str = typer.Argument(None, metavar="[ALIAS]")) -> None:
    """Who moved the model's aliases, when, from which version to which."""
    rows = client(ctx).registry.alias_history(name, alias_name)
    show(ctx, [_aliases_text(r) for r in rows] if not _json(ctx) else rows, ["moved_at", "alias", "from_version", "to_version", "actor"],
         title=f"alias moves of {name}")


@app.command("resolve")
def resolve(ctx: typer.Context, ref: str) -> None:
    """The version a reference (NAME, NAME@3, NAME@production) points at."""
    v = client(ctx).registry.resolve(ref)
    if _json(ctx):
        show(ctx, v)
    else:
        console.print(f"{ref} → {v['model']}@{v['version']}")


def _json(ctx: typer.Context) -> bool:
    from modelyard.cli._common import wants_json

    return wants_json(ctx)
