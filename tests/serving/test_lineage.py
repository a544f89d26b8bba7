"""Deployments are in the lineage graph: a model version links to every deployment serving it."""

from __future__ import annotations

from modelyard.sdk.client import Client
from tests.serving.conftest import DigitsModel


def _serving(client: Client, version: int) -> set[str]:
    graph = client.registry.lineage(f"model_version:digits@{version}", direction="downstream",
                                    depth=1)
    return {n["id"] for n in graph["nodes"] if n["kind"] == "deployment"}


def test_a_deployment_made_directly_is_downstream_of_the_versions_it_serves(
        client: Client, digits_model: DigitsModel) -> None:
    by_alias = client.serving.create("prod", "digits@production")
    split = client.serving.create("split", "digits@production",
                                  traffic={str(digits_model.v1): 90, str(digits_model.v2): 10})
    assert _serving(client, digits_model.v1) == {by_alias["id"], split["id"]}
    assert _serving(client, digits_model.v2) == {split["id"]}


def test_moving_the_alias_links_the_new_version_to_the_deployment_that_follows_it(
        client: Client, digits_model: DigitsModel) -> None:
    dep = client.serving.create("prod", "digits@production")
    pinned = client.serving.create("pinned", f"digits@{digits_model.v1}")
    assert dep["id"] not in _serving(client, digits_model.v2)

    client.registry.set_alias("digits", "production", digits_model.v2)

    assert _serving(client, digits_model.v2) == {dep["id"]}  # the pinned one did not follow
    assert _serving(client, digits_model.v1) == {dep["id"], pinned["id"]}  # history stays
