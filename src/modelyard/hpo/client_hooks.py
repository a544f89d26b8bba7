"""What trainer code may call inside a trial job to stop early and cleanly.

`should_prune()` sends the metrics logged so far and asks the server, which runs the study's
pruner on them right away: a trainer that asks after every epoch stops at the first epoch
boundary after the decision. The server also cancels a pruned trial's job (which frees its
resources) whatever the trainer does; the built-in trainers ask after every epoch.

>>> from modelyard import runtime
>>> from modelyard.hpo.client_hooks import should_prune
>>> runtime.log_metrics(epoch, val_accuracy=acc)
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
    from modelyard.runtime._context import client
    from modelyard.runtime._io import flush_metrics

    try:
        flush_metrics()  # the pruner decides on this epoch's values, not the last flush's
        return bool(client().hpo.should_prune(job_id))
    except ModelyardError:
        return False
