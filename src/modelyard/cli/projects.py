"""`modelyard project ...`"""

from __future__ import annotations

import typer

from modelyard.cli._common import client, show

app = typer.Typer(help="Projects, users and members.", no_args_is_help=True)


@app.command("create")
def create(ctx: typer.Context, name: str, description: str = "") -> None:
    show(ctx, client(ctx).create_project(name, description))


@app.command("list")
def list_(ctx: typer.Context) -> None:
    show(ctx, client(ctx).list_projects(), ["name", "description", "created_by", "created_at"])


@app.command("add-user")
def add_user(ctx: typer.Context, project: str, user: str, role: str = "viewer") -> None:
    """Give USER a ROLE (viewer, editor, admin) in PROJECT."""
    show(ctx, client(ctx).set_member(project, user, role))


@app.command("create-user")
def create_user(ctx: typer.Context, name: str, superuser: bool = False,
                create_projects: bool = typer.Option(False, help="may create projects")) -> None:
    """Create a user; prints its first token once."""
    show(ctx, client(ctx).create_user(name, superuser, create_projects))


@app.command("whoami")
def whoami(ctx: typer.Context) -> None:
    show(ctx, client(ctx).whoami())
