"""Credentials a source needs, read from the environment at fetch time.

sources.yaml names environment variables, never secrets. The values live only
in the request headers of one fetch: they are not stored, logged or reported,
and they are only sent to the origin of the configured URL (a redirect to
another host goes without them).
"""

from __future__ import annotations

import os
from typing import Mapping

from .config import Credentials


class MissingCredential(Exception):
    """An environment variable named in the config is not set."""

    def __init__(self, variable: str):
        super().__init__(f"the environment variable {variable} (named in the config's credentials) is not set")
        self.variable = variable


def credential_headers(credentials: Credentials, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Request headers carrying the credentials; raises MissingCredential when a variable is unset."""

    def value(variable: str) -> str:
        found = environ.get(variable)
        if not found:
            raise MissingCredential(variable)
        return found

    headers = {name: value(variable) for name, variable in credentials.headers}
    if credentials.cookies:
        headers["Cookie"] = "; ".join(f"{name}={value(variable)}" for name, variable in credentials.cookies)
    return headers
