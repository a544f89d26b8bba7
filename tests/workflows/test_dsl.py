"""Pipelines are validated when defined: the error names the offending steps."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from modelyard.core.errors import InvalidArgument
from modelyard.workflows import Pipeline, step
from tests.workflows._packages import SOURCE


def _source() -> ModuleType:
    # The DSL on its own, in this test's process: the package's module under another name,
    # so that the tests that check the server never imports `wfpipes` stay meaningful.
    spec = importlib.util.spec_from_file_location("dsl_wfpipes", SOURCE / "wfpipes.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


pipes = _source()


def test_cycle_is_rejected_naming_the_steps_in_it() -> None:
    with pytest.raises(InvalidArgument) as e:
        pipes.cyclic()
    assert "cycle" in e.value.message
    assert e.value.details["steps"] == ["p", "q"]


def test_missing_input_is_rejected_naming_the_step_and_argument() -> None:
    with pytest.raises(InvalidArgument) as e:
        pipes.missing_input()
    assert "'second' needs nowhere" in e.value.message
    assert e.value.details["steps"] == ["second"]


def test_type_mismatch_is_rejected_naming_both_steps() -> None:
    with pytest.raises(InvalidArgument) as e:
        pipes.mismatched()
    assert "'consume' takes produce: int but 'produce' returns str" in e.value.message
    assert e.value.details["steps"] == ["consume", "produce"]


def test_mapping_over_a_step_that_returns_no_list_is_rejected() -> None:
    @step
    def one(n: int) -> int:
        return n

    @step(map_over="one")
    def each(one: int) -> int:
        return one

    with pytest.raises(InvalidArgument) as e:
        Pipeline("bad-map", [one, each], params={"n": 1})
    assert "'each' maps over 'one'" in e.value.message


def test_definition_hash_changes_with_parameters_and_code_but_not_otherwise() -> None:
    first = Pipeline("cached", [pipes.a, pipes.b, pipes.c, pipes.d],
                     params={"x": 1, "y": 2, "workdir": "."})
    assert first.definition_hash() == pipes.cached.definition_hash()
    other_params = Pipeline("cached", [pipes.a, pipes.b, pipes.c, pipes.d],
                            params={"x": 3, "y": 2, "workdir": "."})
    assert other_params.definition_hash() != first.definition_hash()

    @step
    def a(x: int, workdir: str) -> int:  # same name, different code
        return x

    other_code = Pipeline("cached", [a, pipes.b, pipes.c, pipes.d],
                          params={"x": 1, "y": 2, "workdir": "."})
    assert other_code.definition_hash() != first.definition_hash()


def test_map_step_output_is_typed_as_a_list_for_its_consumers() -> None:
    assert pipes.fanout.output_type("square") == list[int]
    assert pipes.fanout.order == ["numbers", "square", "total"]


def test_the_public_surface_is_what_pipeline_authors_need() -> None:
    import modelyard.workflows as wf

    assert sorted(wf.__all__) == ["Pipeline", "StepContext", "StepSpec", "step"]
