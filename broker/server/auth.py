"""Client authentication of core NATS: a single user/password, or a token.

With neither configured every client is admitted. Comparisons are constant-time.
"""
from __future__ import annotations

import hmac


class Authenticator:
    def __init__(self, user: str = "", password: str = "", token: str = ""):
        if token and user:
            raise ValueError("configure either a token or a user and password, not both")
        self.user = user
        self.password = password
        self.token = token

    @property
    def required(self) -> bool:
        return bool(self.user or self.token)

    def check(self, options: dict) -> bool:
        """Whether a CONNECT's credentials admit the client."""
        if self.token:
            return _same(options.get("auth_token"), self.token)
        if self.user:
            return _same(options.get("user"), self.user) and _same(options.get("pass"), self.password)
        return True


def _same(given: object, expected: str) -> bool:
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
