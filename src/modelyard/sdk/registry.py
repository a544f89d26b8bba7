"""Client calls of the registry component."""

from __future__ import annotations

from modelyard.sdk._http import Transport


class RegistryAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t
