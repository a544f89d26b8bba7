"""Client calls of the serving component."""

from __future__ import annotations

from modelyard.sdk._http import Transport


class ServingAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t
