"""An in-process event bus: components announce what happened without knowing who listens.

Kinds in use: `dataset.commit` {project, dataset, version}, `alias.moved` {project, model,
alias, version}, `alert.firing` {project, alert, deployment, value}, `job.ended` {project, job,
state}. Listeners run synchronously in the publisher's thread and must be quick;
a failing listener is logged and never fails the publisher's operation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("modelyard.events")

Listener = Callable[[str, dict[str, Any]], object]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, payload)
            except Exception:  # noqa: BLE001 - the operation already happened; listeners can't undo it
                log.exception("listener %r failed on %s", listener, kind)
