"""Refuse secrets on the command line of the Hydra entry points, before Hydra sees them.

Hydra writes every override to <run dir>/.hydra/ before a job starts (and Hydra callbacks cannot
stop it: it turns their exceptions into warnings), and the shell keeps them in its history. Keys
come from LEIA_SECRET or a secret file instead.
"""

from __future__ import annotations

import os
import sys

from .ciphers.secrets import ENV_VAR
from .records import SECRET_KEYS


# What the `key` group may hold on the command line: key *sources*, none of them a secret.
KEY_FIELDS = ("seed", "secret_file", "key_file")
KEY_OPTIONS = ("env", "seed", "secret_file", "key_file")  # conf/key/*.yaml


def _key_override(name: str, value: str) -> bool:
    """Whether an override of the key group could carry anything but a key source: any field
    but KEY_FIELDS (key.secret, key.secret_hex, key.passphrase, ...), in any syntax (key.x=...,
    +key.x=..., key={x: ...})."""
    if name == "key":
        value = value.strip()
        if value in KEY_OPTIONS:
            return False
        if not (value.startswith("{") and value.endswith("}")):
            return True
        fields = [part.split(":", 1)[0].strip().strip("'\"") for part in value[1:-1].split(",") if part.strip()]
        return any(f not in KEY_FIELDS for f in fields) or any(":" not in p for p in value[1:-1].split(",") if p.strip())
    return name.startswith("key.") and name[len("key."):] not in KEY_FIELDS


def secret_override(args: list[str]) -> str | None:
    """The first command-line override that carries (or could carry) a secret, if any."""
    env = os.environ.get(ENV_VAR)
    for arg in args:
        name, eq, value = arg.lstrip("+~").partition("=")
        if eq and (name.rsplit(".", 1)[-1].lower() in SECRET_KEYS or (env and env in value)
                   or _key_override(name, value)):
            return name
    return None


def refuse_secrets(args: list[str] | None = None) -> None:
    name = secret_override(sys.argv[1:] if args is None else args)
    if name:
        sys.exit(
            f"refusing the command-line override {name}=...: a secret on the command line would be written to "
            f".hydra/ and your shell history (the key group takes only {', '.join(KEY_FIELDS)} here). "
            f"Use key=env ({ENV_VAR}) or key=secret_file key.secret_file=<path>."
        )
