"""What a run prints and writes about itself: the resolved config with secrets redacted, and
metrics.json (written atomically, so a killed run never leaves a half-written file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .ciphers.secrets import ENV_VAR

# Config keys whose values are secrets. Key *sources* (seed, secret_file path, key_file path) are not.
SECRET_KEYS = {"secret", "password", "token", "api_key", "wandb_api_key"}
REDACTED = "<redacted>"
# The `status` of a run's metrics.json (see leia.sweeps and leia.runs).
STATUSES = ("complete", "not_applicable", "failed", "interrupted")


def redact(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """A copy of a config container with secret values replaced."""
    secrets = secrets or tuple(s for s in (os.environ.get(ENV_VAR),) if s)
    if isinstance(value, dict):
        return {k: (REDACTED if str(k).lower() in SECRET_KEYS and v is not None else redact(v, secrets)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str) and any(s and s in value for s in secrets):
        return REDACTED
    return value


def redacted_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(redact(OmegaConf.to_container(cfg, resolve=True))))


def write_metrics(path: Path, metrics: dict) -> None:
    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
