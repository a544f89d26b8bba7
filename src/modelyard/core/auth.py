"""Auth primitives: roles, token minting and hashing, the authenticated principal."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

TOKEN_PREFIX = "myd_"


class Role(enum.IntEnum):
    """Roles per project; a higher role includes every lower one."""

    viewer = 1
    editor = 2
    admin = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        from modelyard.core.errors import InvalidArgument

        try:
            return cls[value]
        except KeyError:
            raise InvalidArgument(
                f"unknown role {value!r}: use one of viewer, editor, admin", {"field": "role"}
            ) from None


def new_token() -> str:
    """A high-entropy bearer token; only its hash is ever stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is safe (no password stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, the roles they hold per project, and the token's scope."""

    user_id: str
    user_name: str
    is_superuser: bool = False
    roles: dict[str, Role] = field(default_factory=dict)  # project name -> role
    token_id: str = ""
    scope_project: str | None = None  # a job token works in one project only
    scope_role: Role | None = None

    def role_in(self, project: str) -> Role | None:
        if self.scope_project is not None and project != self.scope_project:
            return None
        role = Role.admin if self.is_superuser else self.roles.get(project)
        if role is not None and self.scope_role is not None:
            role = min(role, self.scope_role)
        return role
