"""What trainer code may call inside a trial job to stop early and cleanly.

The controller cancels a pruned trial's job (which frees its resources) whatever the trainer
does; a trainer that calls `should_prune()` between epochs can instead save what it has and
exit 0 before the cancel reaches it.

>>> from modelyard.hpo.client_hooks import should_prune
>>> if should_prune():
...     return 0
"""

from __future__ import annotations

import os

from modelyard.core.errors import ModelyardError


def should_prune() -> bool:
    """True when this job is a trial its study has pruned; False outside a study or offline."""
    job_id = os.environ.get("MODELYARD_JOB_ID")
    if not job_id:
        return False
    from modelyard.sdk.client import Client

    try:
        with Client() as c:
            return bool(c.hpo.should_prune(job_id))
    except ModelyardError:
        return False
