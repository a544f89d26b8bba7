"""The `modelyard` command."""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from modelyard.cli._common import Options, err_console
from modelyard.core.errors import ModelyardError

app = typer.Typer(name="modelyard", help="A deep learning platform: data to deployed, monitored models.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

# (module, command name): each module has `app`, a Typer group of that component.
GROUPS = (
    ("modelyard.cli.projects", "project"),
    ("modelyard.cli.users", "user"),
    ("modelyard.cli.datasets", "dataset"),
    ("modelyard.cli.training", "train"),
    ("modelyard.cli.hpo", "hpo"),
    ("modelyard.cli.registry", "model"),
    ("modelyard.cli.runs", "run"),
    ("modelyard.cli.lineage", "lineage"),
    ("modelyard.cli.serving", "deploy"),
    ("modelyard.cli.metrics", "metrics"),
    ("modelyard.cli.workflows", "pipeline"),
)


@app.callback()
def _root(
    ctx: typer.Context,
    url: str = typer.Option(None, envvar="MODELYARD_URL", help="server URL"),
    token: str = typer.Option(
        None, envvar="MODELYARD_TOKEN", show_default=False,
        help="API token. Default: $MODELYARD_TOKEN, else the admin-token file of "
        "$MODELYARD_HOME, else ~/.modelyard/admin-token"),
    project: str = typer.Option(None, "--project", "-p", envvar="MODELYARD_PROJECT"),
    json_out: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    ctx.obj = Options(url=url, token=token, project=project, json=json_out)


for _module, _name in GROUPS:
    try:
        _group = import_module(_module).app
    except ModuleNotFoundError:
        continue
    if isinstance(_group, typer.Typer):
        app.add_typer(_group, name=_name)
    else:  # a single command (e.g. lineage)
        app.command(_name)(_group)

import_module("modelyard.cli.server").register(app)


def main() -> None:
    try:
        app()
    except ModelyardError as e:
        err_console.print(f"[red]error[/red] ({e.code}): {e.message}")
        if e.details:
            err_console.print(e.details)
        sys.exit(1)
