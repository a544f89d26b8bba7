"""Client calls of the metrics component."""

from __future__ import annotations

from modelyard.sdk._http import Transport


class MetricsAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t
