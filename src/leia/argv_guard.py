"""Refuse secrets on the command line of the Hydra entry points, before Hydra sees them.

Hydra writes every override to <run dir>/.hydra/ before a job starts (and Hydra callbacks cannot
stop it: it turns their exceptions into warnings), and the shell keeps them in its history. Keys
come from LEIA_SECRET or a secret file instead.
"""

from __future__ import annotations

import os
import sys

from .ciphers.secrets import ENV_VAR
from .reporting import SECRET_KEYS


def secret_override(args: list[str]) -> str | None:
    """The first command-line override that carries a secret, if any."""
    env = os.environ.get(ENV_VAR)
    for arg in args:
        name, eq, value = arg.lstrip("+~").partition("=")
        if eq and (name.rsplit(".", 1)[-1].lower() in SECRET_KEYS or (env and env in value)):
            return name
    return None


def refuse_secrets(args: list[str] | None = None) -> None:
    name = secret_override(sys.argv[1:] if args is None else args)
    if name:
        sys.exit(
            f"refusing the command-line override {name}=...: a secret on the command line would be written to "
            f".hydra/ and your shell history. Use key=env ({ENV_VAR}) or key=secret_file key.secret_file=<path>."
        )
