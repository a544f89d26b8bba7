"""The lineage walk, and the small interfaces through which other components describe their
own nodes (the registry stores edges; it never reads another component's tables).

A source for a kind answers three questions about its ids: is this id one of the project's
(and what is its canonical id: a deployment's name resolves to its id), what are its
attributes, and which edges it knows that the edge table does not hold. Predictions are such
edges: one event per request is far too many rows to mirror into the edge table, so the
serving side derives `deployment -> prediction` and `model_version -> prediction` from the
event itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from modelyard.registry.models import LineageEdge, LineageGraph, LineageNode

if TYPE_CHECKING:
    from modelyard.registry.store import RegistryStore

MAX_LINEAGE_NODES = 5000


class DeploymentLookup(Protocol):
    def deployments_using(self, project: str, model: str, version: int | None,
                          alias: str | None) -> list[str]:
        """Names of the deployments that route requests to `version` of `model` (by pin,
        alias, traffic split or shadow), or that follow `alias`; sorted."""


class LineageSource(Protocol):
    def resolve(self, project: str, node_id: str) -> str:
        """The canonical id of a node of the project; NotFound when it is not one."""

    def describe(self, project: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Attributes (hashes, times...) of the ids it knows; unknown ids are left out."""

    def edges(self, project: str, ids: list[str], upstream: bool) -> list[LineageEdge]:
        """Edges into (upstream) or out of the ids that the edge table does not hold."""


def walk(store: RegistryStore, sources: dict[str, LineageSource], project: str,
         root: tuple[str, str], upstream: bool, depth: int) -> LineageGraph:
    seen = {root}
    frontier = [root]
    edges: list[LineageEdge] = []
    for _ in range(depth):
        if not frontier or len(seen) >= MAX_LINEAGE_NODES:
            break
        found = store.edges_of(project, frontier, upstream=upstream)
        for kind, source in sources.items():
            ids = [i for k, i in frontier if k == kind]
            if ids:
                found += source.edges(project, ids, upstream)
        frontier = []
        for e in found:
            edges.append(e)
            nxt = (e.src_kind, e.src_id) if upstream else (e.dst_kind, e.dst_id)
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    attrs = store.node_attrs(project, list(seen))
    for kind, source in sources.items():
        ids = [i for k, i in seen if k == kind]
        if ids:
            attrs.update({(kind, i): a for i, a in source.describe(project, ids).items()})
    order = sorted(seen, key=lambda n: (n != root, n))
    nodes = [LineageNode(kind=k, id=i, attrs=attrs.get((k, i), {})) for k, i in order]
    return LineageGraph(root=nodes[0], direction="upstream" if upstream else "downstream",
                        nodes=nodes, edges=edges)
