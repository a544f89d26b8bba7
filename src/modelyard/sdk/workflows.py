"""Client calls of the workflows component."""

from __future__ import annotations

from modelyard.sdk._http import Transport


class WorkflowsAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t
