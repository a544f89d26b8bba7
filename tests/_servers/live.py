"""A real modelyard server (uvicorn) in a thread, for tests whose jobs call back over HTTP."""

from __future__ import annotations

from modelyard.server.embedded import embedded_server as live_server

__all__ = ["live_server"]
