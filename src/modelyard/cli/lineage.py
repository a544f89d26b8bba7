"""`modelyard lineage KIND:ID`: the lineage graph around one node, printed as a tree."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.tree import Tree

from modelyard.cli._common import client, console, wants_json

app = typer.Typer(help="lineage: what went into a model version, run or dataset snapshot, or what "
                       "came out of it", subcommand_metavar="",
                  context_settings={"allow_interspersed_args": True})


def _label(node: dict[str, Any], relation: str | None, upstream: bool = True) -> str:
    text = f"[bold]{node['kind']}[/bold] {node['id']}"
    if relation:
        text = f"[dim]{relation}[/dim] {'←' if upstream else '→'} {text}"
    attrs = node.get("attrs") or {}
    if attrs.get("params"):
        text += f"  [cyan]params[/cyan] {json.dumps(attrs['params'], default=str)[:120]}"
    if attrs.get("metrics"):
        text += f"  [green]metrics[/green] {json.dumps(attrs['metrics'], default=str)[:120]}"
    return text


def build_tree(graph: dict[str, Any]) -> Tree:
    """A Rich tree from the root; a node reached twice is shown again without its subtree."""
    upstream = graph["direction"] == "upstream"
    nodes = {(n["kind"], n["id"]): n for n in graph["nodes"]}
    children: dict[tuple[str, str], list[tuple[tuple[str, str], str]]] = {}
    for e in graph["edges"]:
        src, dst = (e["src_kind"], e["src_id"]), (e["dst_kind"], e["dst_id"])
        parent, child = (dst, src) if upstream else (src, dst)
        children.setdefault(parent, []).append((child, e["relation"]))
    root_key = (graph["root"]["kind"], graph["root"]["id"])
    tree = Tree(_label(graph["root"], None))
    shown = {root_key}

    def add(branch: Tree, key: tuple[str, str]) -> None:
        for child, relation in sorted(children.get(key, [])):
            node = nodes.get(child, {"kind": child[0], "id": child[1]})
            sub = branch.add(_label(node, relation, upstream))
            if child not in shown:
                shown.add(child)
                add(sub, child)

    add(tree, root_key)
    return tree


@app.callback(invoke_without_command=True)
def lineage(
    ctx: typer.Context,
    node: str = typer.Argument(..., help="KIND:ID, e.g. model:digits@3, run:run_..., "
                                         "dataset_snapshot:snap_..."),
    downstream: bool = typer.Option(False, "--downstream", "-d",
                                    help="show what came out of the node instead of what went in"),
    depth: int = typer.Option(10, min=1, max=50, help="how many hops to walk"),
) -> None:
    """Print the lineage of NODE as a tree (upstream by default)."""
    graph = client(ctx).registry.lineage(node, "downstream" if downstream else "upstream", depth)
    if wants_json(ctx):
        console.print_json(json.dumps(graph, default=str))
    else:
        console.print(build_tree(graph))
