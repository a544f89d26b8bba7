"""Client calls of the datasets component."""

from __future__ import annotations

from modelyard.sdk._http import Transport


class DatasetsAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t
