"""One-time launch tickets: how a job process gets its token without it being written down.

A process that the server starts somewhere it does not control (a Ray cluster, whose dashboard
shows every job's environment) gets a ticket instead of credentials. The ticket is worth
nothing but a bounded number of exchanges, each for a fresh token scoped to one project and
role, before a short deadline, for one attempt of one subject (a training job). When the subject
ends, its tickets are deleted and every token handed out for them is revoked.

Only the ticket's hash is stored, like a token's. Every refusal reads the same, so a caller
learns nothing about which check failed (unknown, used up, expired, another job's, voided).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

from modelyard.core.auth import Role, hash_token, new_token
from modelyard.core.errors import Unauthenticated
from modelyard.core.ids import utcnow
from modelyard.server.store import AuthStore

TICKET_PREFIX = "myt_"
REFUSED = ("the launch ticket is unknown, used up, expired or not this job's: a ticket is good "
           "for its own job attempt's workers only, within minutes of its launch")


def new_ticket() -> str:
    return TICKET_PREFIX + secrets.token_urlsafe(32)


class LaunchTickets:
    """Issues, redeems and voids launch tickets; `forget` drops revoked tokens from the
    principal cache, so a voided ticket's tokens stop working at once in this process."""

    def __init__(self, store: AuthStore, forget: Callable[[str], None]) -> None:
        self.store = store
        self.forget = forget

    def issue(self, *, user: str, project: str, role: Role, subject: str, attempt: int,
              uses: int, ttl_s: int, token_ttl_s: int) -> str:
        """A ticket good for `uses` exchanges within `ttl_s`, each for a token acting for
        `user` in `project` as at most `role`, living `token_ttl_s`."""
        ticket = new_ticket()
        owner = self.store.get_user(user)
        self.store.add_ticket(hash_token(ticket), subject, attempt, owner.id, project, role,
                              token_ttl_s, max(1, uses), utcnow() + timedelta(seconds=ttl_s))
        return ticket

    def redeem(self, ticket: str | None, *, subject: str, attempt: int) -> str:
        """A fresh scoped token for one use of `ticket`; Unauthenticated (always the same
        message) when it is not a live ticket of this subject's attempt with a use left."""
        if not ticket or not ticket.startswith(TICKET_PREFIX):
            raise Unauthenticated(REFUSED)
        token = new_token()
        got = self.store.redeem_ticket(hash_token(ticket), subject, attempt, utcnow(),
                                       hash_token(token), token_name=subject)
        if got is None:
            raise Unauthenticated(REFUSED)
        return token

    def void(self, subject: str) -> int:
        """Ends every ticket of `subject` and revokes the tokens they were exchanged for;
        returns how many tokens were revoked."""
        revoked = self.store.void_tickets(subject)
        for token_id in revoked:
            self.forget(token_id)
        return len(revoked)
