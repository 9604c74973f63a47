"""Typed config groups: Hydra schemas made from leia's own dataclasses (`DataConfig`, `OptimConfig`,
`ScheduleConfig`, every attack's `Params`), so that a misspelt setting (`data.batchsize=3`,
`attack.holdot=10`) fails when the config is composed, before any run directory exists.

Each group's yaml files start from their schema (`defaults: [schema, _self_]`; attacks:
`schema_<name>`). The schemas check names only: their fields are typed `Any`, because the
dataclasses themselves check values (with leia's messages) when a run builds them, and some fields
take a number or a list (`data.mean`). `data.seed` is not a setting: it follows the run's `seed`.
The entry points register the schemas they use before Hydra composes (`register("train")`,
`register("attack")`); the tests register both.
"""

from __future__ import annotations

from dataclasses import MISSING, field, fields, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore


def schema(cls, title: str, skip: tuple[str, ...] = (), **fixed: Any) -> type:
    """A dataclass with `cls`'s field names and defaults, every field typed Any (plus `fixed`)."""
    spec = []
    for f in fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else MISSING)
        if isinstance(default, tuple):
            default = list(default)
        made = field(default_factory=lambda d=default: list(d)) if isinstance(default, list) else field(default=default)
        spec.append((f.name, Any, made))
    spec += [(k, Any, field(default=v)) for k, v in fixed.items()]
    return make_dataclass(title, spec)


def register(task: str) -> None:
    """Store the schemas of `task`'s config groups (train: data, optimizer, scheduler; attack: data
    and every attack)."""
    from .data.datamodule import DataConfig

    store = ConfigStore.instance()
    store.store(group="data", name="schema", node=schema(DataConfig, "DataSchema", skip=("seed",)))
    if task == "train":
        from .models.classifier import OptimConfig, ScheduleConfig

        store.store(group="optimizer", name="schema", node=schema(OptimConfig, "OptimizerSchema"))
        store.store(group="scheduler", name="schema", node=schema(ScheduleConfig, "SchedulerSchema"))
    elif task == "attack":
        from . import attacks

        for name in attacks.names():
            store.store(group="attack", name=f"schema_{name}",
                        node=schema(attacks.get(name).Params, f"AttackSchema_{name}", name=name))
    else:
        raise ValueError(f"task must be train or attack, got {task!r}")
