"""`modelyard user ...`: what a user may do beyond project roles, and users' tokens."""

from __future__ import annotations

import typer

from modelyard.cli._common import client, console, show

app = typer.Typer(help="Users' grants and tokens.", no_args_is_help=True)

TOKEN_COLUMNS = ["id", "name", "scope_project", "scope_role", "created_at", "expires_at",
                 "last_used_at"]


@app.command("grant")
def grant(ctx: typer.Context, user: str,
          create_projects: bool = typer.Option(
              ..., "--create-projects/--no-create-projects",
              help="let USER create projects, or take the right back")) -> None:
    """Superusers: grant or take back USER's right to create projects."""
    show(ctx, client(ctx).set_grants(user, can_create_projects=create_projects))


@app.command("tokens")
def tokens(ctx: typer.Context,
           user: str = typer.Option(None, "--user", "-u",
                                    help="whose tokens (superusers: anyone); default yours")) -> None:
    """List live tokens: ids, names, scopes, dates; never the secrets."""
    show(ctx, client(ctx).list_tokens(user), TOKEN_COLUMNS)


@app.command("revoke-token")
def revoke_token(ctx: typer.Context, token_id: str,
                 user: str = typer.Option(None, "--user", "-u",
                                          help="the token's owner (superusers: anyone); "
                                               "default you")) -> None:
    """Revoke a token; it stops working at once."""
    client(ctx).revoke_token(token_id, user)
    console.print(f"revoked {token_id}")
