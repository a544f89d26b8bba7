"""Client calls of serving: deployments and predictions."""

from __future__ import annotations

import builtins
from typing import Any
from urllib.parse import quote

from modelyard.sdk._http import Transport


class ServingAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def _p(self, name: str = "", project: str | None = None) -> str:
        suffix = f"/{quote(name, safe='')}" if name else ""
        return self._t.p(f"/deployments{suffix}", project)

    def create(self, name: str, model_ref: str, *, traffic: dict[str, int] | None = None,
               shadow_version: int | None = None, batching: dict[str, Any] | None = None,
               rollback: dict[str, Any] | None = None, pinned: bool = False, warm: bool = False,
               project: str | None = None) -> dict[str, Any]:
        """Deploy `model_ref` (`model@alias` or `model@version`) under `name`."""
        body = {"name": name, "model_ref": model_ref, "traffic": traffic,
                "shadow_version": shadow_version, "batching": batching or {},
                "rollback": rollback, "pinned": pinned, "warm": warm}
        return self._t.post(self._p(project=project), json=body)  # type: ignore[no-any-return]

    def get(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._p(name, project))  # type: ignore[no-any-return]

    def list(self, project: str | None = None) -> builtins.list[dict[str, Any]]:
        return self._t.get(self._p(project=project))  # type: ignore[no-any-return]

    def update(self, name: str, project: str | None = None, **fields: Any) -> dict[str, Any]:
        """Change only the given fields (model_ref, traffic, shadow_version, batching,
        rollback, pinned, warm)."""
        return self._t.patch(self._p(name, project), json=fields)  # type: ignore[no-any-return]

    def set_traffic(self, name: str, traffic: dict[str, int] | None,
                    project: str | None = None) -> dict[str, Any]:
        """`{"3": 90, "4": 10}` splits requests between versions; None sends all to model_ref."""
        return self._t.put(f"{self._p(name, project)}/traffic", json={"traffic": traffic})  # type: ignore[no-any-return]

    def delete(self, name: str, project: str | None = None) -> None:
        self._t.delete(self._p(name, project))

    def events(self, name: str, limit: int = 100, project: str | None = None) -> builtins.list[dict[str, Any]]:
        return self._t.get(f"{self._p(name, project)}/events", params={"limit": limit})  # type: ignore[no-any-return]

    def warm(self, name: str, project: str | None = None) -> builtins.list[int]:
        return self._t.post(f"{self._p(name, project)}/warm")["loaded_versions"]  # type: ignore[no-any-return]

    def predict(self, name: str, inputs: builtins.list[Any], version: int | None = None,
                project: str | None = None) -> dict[str, Any]:
        """`{"predictions": [{"label", "confidence"}], "model_version", "request_id",
        "deployment", "model"}`."""
        params = {"version": version} if version is not None else None
        return self._t.post(f"{self._p(name, project)}/predict", json={"inputs": inputs},  # type: ignore[no-any-return]
                            params=params)

    def prediction(self, name: str, request_id: str,
                   project: str | None = None) -> dict[str, Any]:
        """What deployment `name` answered to `request_id`: outputs, latency, version."""
        return self._t.get(f"{self._p(name, project)}/predictions/{request_id}")  # type: ignore[no-any-return]
