"""How a job process gets its credentials: a launch ticket in its environment, exchanged once
per worker for its token and the blob store's options over one loopback call.

A job's environment is readable by more parties than the job: with the Ray executor, anyone who
reaches the cluster's dashboard reads every job's entrypoint, runtime_env and metadata. So the
environment carries only a ticket, worth `workers` exchanges (one per rank: torchrun's ranks and
Ray Train's workers each redeem their own; a rank may run on another node, so there is no file
to share) within `TICKET_TTL_S` of the launch, for this attempt of this job only, and void when
the attempt ends, together with every token it was exchanged for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.core.auth import Role
from modelyard.core.errors import NotFound, Unauthenticated
from modelyard.server.tickets import REFUSED
from modelyard.training.models import ACTIVE_STATES, Job, JobCredentials

if TYPE_CHECKING:
    from modelyard.core.blobs import BlobStore
    from modelyard.server.service import AuthService
    from modelyard.training.store import JobStore

# Long enough for a Ray cluster to place a job that waits for a node, short enough that a
# ticket read off a dashboard is soon worthless; every use is gone once the ranks started.
TICKET_TTL_S = 600
# The token outlives the job's own timeout a little (checkpoints and the model are saved at the
# end); it is revoked when the attempt ends anyway.
TOKEN_GRACE_S = 3600


def subject(job_id: str) -> str:
    return f"training-job:{job_id}"


def issue_ticket(auth: AuthService, job: Job) -> str:
    """The ticket for the job's current attempt: one exchange per worker."""
    return auth.tickets.issue(
        user=job.created_by, project=job.project, role=Role.editor, subject=subject(job.id),
        attempt=job.attempt, uses=job.resources.workers, ttl_s=TICKET_TTL_S,
        token_ttl_s=job.timeout_s + TOKEN_GRACE_S)


def void_tickets(auth: AuthService, job_id: str) -> int:
    """Ends the job's tickets and revokes the tokens they gave out; how many tokens."""
    return auth.tickets.void(subject(job_id))


def redeem(auth: AuthService, store: JobStore, blobs: BlobStore, project: str, job_id: str,
           ticket: str | None) -> JobCredentials:
    """One exchange of `ticket` by a process of job `job_id`. Every refusal is the same 401,
    whether the job does not exist, has ended, or the ticket is not a live one of its attempt."""
    try:
        job = store.get(project, job_id)
    except NotFound:
        raise Unauthenticated(REFUSED) from None
    if job.state not in ACTIVE_STATES:
        raise Unauthenticated(REFUSED)
    token = auth.tickets.redeem(ticket, subject=subject(job.id), attempt=job.attempt)
    return JobCredentials(token=token, storage_options=blobs.storage_options)
