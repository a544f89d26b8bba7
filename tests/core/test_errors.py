"""The error tree: each class carries its status and code, and survives a trip over the wire."""

from __future__ import annotations

import pytest

from modelyard.core import errors
from modelyard.core.errors import ERROR_CLASSES, ModelyardError, error_from_dict


@pytest.mark.parametrize("cls", list(ERROR_CLASSES.values()), ids=lambda c: c.__name__)
def test_every_error_round_trips_through_its_json(cls: type[ModelyardError]) -> None:
    sent = cls("what went wrong; how to fix it", {"field": "name"})
    back = error_from_dict(sent.status, sent.to_dict())
    assert type(back) is cls
    assert (back.message, back.details, back.status, back.code) == (
        sent.message, sent.details, sent.status, sent.code)


def test_codes_are_unique_and_statuses_are_http_errors() -> None:
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, ModelyardError)]
    assert sorted(c.code for c in classes) == sorted(ERROR_CLASSES)
    assert all(400 <= c.status < 600 for c in classes)


def test_unknown_code_or_foreign_body_becomes_the_base_class() -> None:
    err = error_from_dict(418, {"error": {"code": "teapot", "message": "short and stout"}})
    assert type(err) is ModelyardError and err.message == "short and stout"
    plain = error_from_dict(502, "<html>Bad Gateway</html>")
    assert type(plain) is ModelyardError
    assert "502" in plain.message and "Bad Gateway" in plain.message


def test_details_default_to_an_empty_dict() -> None:
    assert errors.NotFound("gone").to_dict() == {
        "error": {"code": "not_found", "message": "gone", "details": {}}}
