"""The life of a run, one copy for training runs and attack runs.

A run lives in its directory (named after `name`, or a sweep's job directory):
- identity: `describe` (names, scheme parameters, key fingerprint; never key material) and
  `config_digest` (what the run computes, not where it writes or how many processes compute it);
- start: `finished_run` returns a finished run of the same configuration there (nothing to do,
  unless force=true), and refuses one of another configuration; `resume_from` names the
  checkpoint an interrupted run continues from;
- loggers (`build_loggers`: CSV, and W&B offline unless credentials are set; `close_loggers`),
  and one trainer builder (`make_trainer`: checkpoints, the save-on-signal handler);
- end: `finish` writes metrics.json (atomically) and prints the run's one summary line.
`training.py` and `attacking.py` hold only what is specific to them; `sweeps.py` adds what a job of
a multirun records when it cannot finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import lightning as L
from omegaconf import DictConfig, OmegaConf

from . import ciphers
from .errors import InputError
from .preemption import SaveOnSignal
from .reporting import redact, write_metrics

METRICS = "metrics.json"
FAILED = "failed.json"  # a failure beside a finished run it must not replace
CHECKPOINT = Path("checkpoints") / "last.ckpt"
# Trainer settings that say how many processes compute a run, not what they compute.
PLACEMENT = ("devices", "num_nodes", "strategy", "enable_progress_bar", "log_every_n_steps")


# ---------------------------------------------------------------- configuration
def settings(cls, node, group: str):
    """A config group's values as the dataclass `cls`; an unknown setting is an error naming the
    expected ones (a typo must not be silently ignored)."""
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"unknown {group} setting(s) {', '.join(unknown)}; expected: {', '.join(sorted(names))}")
    return cls(**values)


def build_cipher(cfg: DictConfig) -> ciphers.Cipher:
    return ciphers.from_config(OmegaConf.to_container(cfg.scheme, resolve=True),
                               OmegaConf.to_container(cfg.key, resolve=True))


def in_sweep() -> bool:
    """True inside a job of a Hydra multirun (any launcher: basic, submitit local or SLURM)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


# ---------------------------------------------------------------- identity
def describe(cfg: DictConfig, task: str, choices: dict | None = None, cipher: ciphers.Cipher | None = None,
             attack=None) -> dict[str, Any]:
    """What identifies a run in logs, checkpoints and metrics.json: names and, once the cipher is
    built, its parameters and key fingerprint (never the key). Without a cipher (a job that failed
    before building one) it is read from the config alone."""
    choices = choices or {}
    scheme = cipher.name if cipher is not None else cfg.scheme.name
    record: dict[str, Any] = {"name": cfg.name, "task": task, "scheme": scheme,
                              "scheme_config": choices.get("scheme", scheme)}
    if cipher is not None:
        record.update(scheme_params=cipher.config(), key_fingerprint=cipher.fingerprint)
    if task == "attack":
        record["attack"] = attack.name if attack is not None else cfg.attack.name
        if attack is not None:
            record.update(attack_params=attack.config(), threat=attack.threat)
    else:
        record.update(model=cfg.model.name, adapter=cfg.adapter.name)
    record.update(data=cfg.data.name, seed=cfg.seed)
    return record


def run_fields(cfg: DictConfig) -> dict:
    """Fields every finished run's metrics.json adds to its description."""
    key = OmegaConf.to_container(cfg.key, resolve=True) if "key" in cfg else {}
    return {"status": "complete", "key_seed": key.get("seed"),
            "sweep": str(cfg.sweep) if in_sweep() and cfg.get("sweep") else None}


def config_digest(cfg: DictConfig) -> str:
    """Identifies what a run computes (not where it writes or logs), so that a finished run is only
    reused for the same configuration."""
    node = OmegaConf.to_container(cfg, resolve=True)
    for k in ("force", "paths", "logger", "name", "sweep"):
        node.pop(k, None)
    for k in PLACEMENT:
        node.get("trainer", {}).pop(k, None)
    return hashlib.sha256(json.dumps(redact(node), sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- start
def completed(metrics_path: Path, digest: str | None = None) -> dict | None:
    """The metrics of a finished run at this path, if any; a finished run of another configuration
    (another config digest) is an error, not a result to reuse."""
    if metrics_path.is_file():
        done = json.loads(metrics_path.read_text())
        if done.get("complete"):
            if digest is not None and done.get("config_digest") not in (None, digest):
                raise InputError(f"{metrics_path.parent} holds a finished run of a different configuration; give "
                                 f"this run another name (name=...) or re-run it with force=true")
            return done
    return None


def finished_run(cfg: DictConfig, run_dir: Path, digest: str, summary: Callable, redo: str) -> dict | None:
    """Create the run directory and, unless force=true, return the finished run of this
    configuration there (printing its summary), if any."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("force", False) or not (done := completed(run_dir / METRICS, digest)):
        return None
    print(f"{run_dir / METRICS} is complete; nothing to do (force=true {redo})")
    print(summary(done, run_dir))
    return done


def resume_from(cfg: DictConfig, run_dir: Path) -> str | None:
    """The checkpoint an interrupted run of this directory continues from (none with force=true)."""
    last = run_dir / CHECKPOINT
    if last.is_file() and not cfg.get("force", False):
        print(f"resuming from {last}")
        return str(last)
    return None


# ---------------------------------------------------------------- loggers and trainer
def wandb_mode() -> str:
    """offline unless credentials are configured (WANDB_API_KEY or a `wandb login`), or WANDB_MODE says."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    logged_in = netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    return "online" if os.environ.get("WANDB_API_KEY") or logged_in else "offline"


def wandb_group(cfg: DictConfig) -> str | None:
    """The W&B group of a run: `logger.group` when set, else the sweep's name inside a sweep."""
    group = cfg.logger.get("group")
    if group:
        return str(group)
    return str(cfg.sweep) if in_sweep() and cfg.get("sweep") else None


def build_loggers(cfg: DictConfig, run_dir: Path, description: dict, job_type: str) -> list:
    from lightning.pytorch.loggers import CSVLogger

    # One numbered directory per attempt: a resumed run must not overwrite the interrupted one's log.
    loggers = [CSVLogger(save_dir=str(run_dir), name="csv")]
    if cfg.logger.name == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        mode = wandb_mode()
        loggers.insert(0, WandbLogger(
            project=cfg.logger.project, group=wandb_group(cfg), tags=list(cfg.logger.get("tags") or []),
            job_type=job_type, name=cfg.name, save_dir=str(run_dir), offline=mode == "offline",
            config={"run": description, "config": redact(OmegaConf.to_container(cfg, resolve=True))},
        ))
    elif cfg.logger.name != "csv":
        raise InputError(f"logger must be wandb or csv, got {cfg.logger.name!r}")
    return loggers


def close_loggers(loggers: list, final: dict, run_dir: Path, row: dict | None = None) -> None:
    """Log the final numbers (and, on W&B, `row` as a one-row `results` table: the tables of a
    sweep's runs stack into its grid) and finish the W&B run (one run per job), printing how to sync it."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        logger.log_metrics({f"final/{k}": v for k, v in final.items()})
        if isinstance(logger, WandbLogger):
            import wandb

            if row:
                logger.log_table(key="results", columns=list(row), data=[list(row.values())])
            wandb.finish()
            if wandb_mode() in ("offline", "dryrun"):  # Lightning sets WANDB_MODE=dryrun for offline runs
                print(f"W&B ran offline; sync with: wandb sync {run_dir / 'wandb'}/offline-run-*")


def finish_wandb(failed: bool = False) -> None:
    """Close the process's W&B run, if one is open: the next job of a sweep must not log into it."""
    if "wandb" not in sys.modules:
        return
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)


def make_trainer(trainer_cfg: dict, run_dir: Path, loggers: list, checkpoints: bool, callbacks: tuple = (),
                 every_n_steps: int | None = None, **options) -> L.Trainer:
    """The trainer of every run. With checkpoints: last.ckpt at every epoch end (and every
    `every_n_steps`), and on SIGUSR2 (`SaveOnSignal`, after the run's own `callbacks`)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    callbacks = list(callbacks)
    if checkpoints:
        callbacks.append(SaveOnSignal(run_dir / CHECKPOINT))
        callbacks.append(ModelCheckpoint(dirpath=str(run_dir / CHECKPOINT.parent), filename="epoch{epoch}",
                                         save_last=True, save_top_k=0, every_n_train_steps=every_n_steps,
                                         auto_insert_metric_name=False))
    return L.Trainer(default_root_dir=str(run_dir), logger=loggers, callbacks=callbacks,
                     enable_checkpointing=checkpoints, **options, **trainer_cfg)


# ---------------------------------------------------------------- end
def finish(trainer: L.Trainer, run_dir: Path, metrics: dict, summary: Callable) -> dict:
    """Write metrics.json (from the main process only) and print the summary line."""
    if trainer.is_global_zero:
        write_metrics(run_dir / METRICS, metrics)
        print(summary(metrics, run_dir))
    return metrics


def status_line(record: dict, run_dir: Path) -> str:
    """The line a job prints about a run that did not complete normally."""
    why = record.get("reason") or record.get("error") or ""
    return f"{record['name']}: {record['status'].replace('_', ' ')} ({why}). Record: {Path(run_dir) / METRICS}"
