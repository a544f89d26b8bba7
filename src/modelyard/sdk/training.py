"""Client calls of the training component."""

from __future__ import annotations

from modelyard.sdk._http import Transport


class TrainingAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t
