"""The life of a run, one copy for training runs and attack runs.

A run lives in its directory (named after `name`, or a sweep's job directory):
- identity: its configuration plus its key fingerprint. `describe` (names, scheme parameters, key
  fingerprint; never key material), `config_digest` (what the run computes, not where it writes or
  how many processes compute it) and run.json (written by `begin` before any work);
- `claimed`: one run at a time in a directory (an flock, released when the process ends or dies);
- start: `finished_run` returns a finished run of the same configuration and key there (nothing to
  do, unless force=true) and refuses one of another configuration or key, naming what changed;
  `begin` refuses to resume a checkpoint of another configuration or key the same way. Only the
  `RESUMABLE` settings may change on resume (more epochs extend a run). Directories written before
  run identities held the key (no run.json, or metrics.json without `identity_version`) are
  refused, never reused under a key nobody checked;
- `stops_cleanly`: SIGTERM (and USR2 without a scheduler) save, record the run as interrupted and
  exit non-zero;
- loggers (`build_loggers`: CSV, and W&B offline unless credentials are set; `close_loggers`),
  and one trainer builder (`make_trainer`: checkpoints, the save-on-signal handler);
- end: `finish` writes metrics.json (atomically) and prints the run's one summary line.
`training.py` and `attacking.py` hold only what is specific to them; `sweeps.py` adds what a job of
a multirun records when it cannot finish.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import sys
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from . import ciphers
from .hostmem import keep_freed_memory
from .errors import InputError
from .preemption import Interrupted, SaveOnSignal
from .records import redact, write_metrics

METRICS = "metrics.json"
FAILED = "failed.json"  # a failure beside a finished run it must not replace
INTERRUPTED = "interrupted.json"  # likewise, for an interrupted extension of a finished run
RECORD = "run.json"  # the run's identity, written before any work
LOCK = ".lock"
CHECKPOINT = Path("checkpoints") / "last.ckpt"
IDENTITY_VERSION = 2  # 2: the key fingerprint is part of a run's identity (one fingerprint per key)
# Trainer settings that say how many processes compute a run, not what they compute.
PLACEMENT = ("devices", "num_nodes", "strategy", "enable_progress_bar", "log_every_n_steps")
# Settings that may change when a run resumes without changing what it is: more epochs extend it.
RESUMABLE = ("trainer.max_epochs", "checkpoint.every_n_steps")
# Settings added after runs were recorded, at the value that computes what those runs computed: a
# recorded run without one of them is the same run when it is at this value (so an upgrade does not
# turn finished runs into "a different configuration").
ADDED_DEFAULTS = {"optimizer.label_smoothing": 0.0, "scheduler.warmup_fraction": 0.2, "scheduler.final_lr": 0.0,
                  "scheduler.ema": 0.0, "scheduler.ema_start": 0.0, "metrics.lpips_weights": None,
                  "data.alternate_flip": False, "data.cutout": 0, "model.options.identity_init": False,
                  "data.client_tta": "none"}


# ---------------------------------------------------------------- configuration
def values(node) -> Any:
    """A config node as plain containers; a required setting left at `???` is an error that names
    it (instead of reaching a loader as the path "???")."""
    from omegaconf.errors import MissingMandatoryValue

    try:
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        name = e.full_key or "a setting"
        raise InputError(f"{name} is required but not set: give {name}=<value> on the command line") from None


def settings(cls, node, group: str):
    """A config group's values as the dataclass `cls`; an unknown setting is an error naming the
    expected ones (a typo must not be silently ignored)."""
    given = values(node) if isinstance(node, DictConfig) else dict(node)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(given) - names)
    if unknown:
        raise InputError(f"unknown {group} setting(s) {', '.join(unknown)}; expected: {', '.join(sorted(names))}")
    return cls(**given)


def build_cipher(cfg: DictConfig) -> ciphers.Cipher:
    return ciphers.from_config(values(cfg.scheme), values(cfg.key))


def in_sweep() -> bool:
    """True inside a job of a Hydra multirun (any launcher: basic, submitit local or SLURM)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


# ---------------------------------------------------------------- identity
def describe(cfg: DictConfig, task: str, choices: dict | None = None, cipher: ciphers.Cipher | None = None,
             image_size: tuple[int, int] | None = None, attack=None) -> dict[str, Any]:
    """What identifies a run in logs, checkpoints and metrics.json: names and, once the cipher is
    built, its parameters and the fingerprint of its key for the run's image size (never the key).
    Without a cipher (a job that failed before building one) it is read from the config alone."""
    choices = choices or {}
    scheme = cipher.name if cipher is not None else cfg.scheme.name
    record: dict[str, Any] = {"name": cfg.name, "task": task, "scheme": scheme,
                              "scheme_config": choices.get("scheme", scheme)}
    if cipher is not None:
        record.update(scheme_params=cipher.config(), key_fingerprint=cipher.fingerprint_for(image_size),
                      image_size=None if image_size is None else list(image_size))
    if task == "attack":
        record["attack"] = attack.name if attack is not None else cfg.attack.name
        if attack is not None:
            record.update(attack_params=attack.config(), threat=attack.threat)
    else:
        record.update(model=cfg.model.name, adapter=cfg.adapter.name)
        if cfg.data.get("client_tta", "none") != "none":  # a test over the client's views: never one view's number
            record["client_tta"] = cfg.data.client_tta
    record.update(data=cfg.data.name, seed=cfg.seed)
    return record


def run_fields(cfg: DictConfig) -> dict:
    """Fields every finished run's metrics.json adds to its description."""
    key = OmegaConf.to_container(cfg.key, resolve=True) if "key" in cfg else {}
    return {"status": "complete", "key_seed": key.get("seed"),
            "sweep": str(cfg.sweep) if in_sweep() and cfg.get("sweep") else None}


def computed(cfg: DictConfig) -> dict:
    """The part of the config that says what a run computes (not where it writes or logs, nor how
    many processes compute it), secrets redacted."""
    node = OmegaConf.to_container(cfg, resolve=True)
    for k in ("force", "paths", "logger", "name", "sweep"):
        node.pop(k, None)
    for k in PLACEMENT:
        node.get("trainer", {}).pop(k, None)
    data = node.get("data") or {}
    if isinstance(data.get("root"), str):  # one directory, however it was written (../x, /abs/x, ~/x)
        data["root"] = _directory(data["root"])
    return redact(node)


def _directory(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _digest(node: dict) -> str:
    return hashlib.sha256(json.dumps(node, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_digest(cfg: DictConfig) -> str:
    """Identifies what a run computes, so that a finished run is only reused for the same
    configuration (and, checked separately, the same key: `key_fingerprint`)."""
    return _digest(computed(cfg))


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    if isinstance(node, dict) and node:
        return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def changes(old: dict, new: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """The settings that differ between two `computed` configs, as "name: old -> new" (a setting
    the old record predates is no change at its `ADDED_DEFAULTS` value)."""
    a, b = flat(old), flat(new)
    if isinstance(a.get("data.root"), str):  # recorded before roots were resolved: the same directory is no change
        a["data.root"] = _directory(a["data.root"])
    return [f"{k}: {a.get(k, '(unset)')} -> {b.get(k, '(unset)')}" for k in sorted(set(a) | set(b))
            if k not in ignore and a.get(k) != b.get(k)
            and not (k not in a and k in ADDED_DEFAULTS and b.get(k) == ADDED_DEFAULTS[k])]


def same_identity(record: dict | None, cfg: DictConfig, ignore: tuple[str, ...] = ()) -> bool:
    """Whether a run.json record is this configuration's run (apart from `ignore`)."""
    if record is None:
        return False
    if record.get("identity") == identity_digest(cfg):
        return True
    return record.get("config") is not None and not changes(record["config"], computed(cfg), ignore)


# ---------------------------------------------------------------- start
def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path} is not readable JSON ({type(e).__name__}: {e}); move it away, or re-run with "
                         f"force=true") from None


def _choices(run_dir: Path) -> str:
    return f"re-run with force=true to start {run_dir} again, or give this run another name (name=...)"


def _refuse_changes(run_dir: Path, what: str, old: dict | None, new: dict, ignore: tuple[str, ...] = ()) -> None:
    if old is None:  # written before run.json existed
        raise InputError(f"{run_dir} holds {what} of a configuration this leia did not record (an older run "
                         f"directory, or another configuration): {_choices(run_dir)}")
    diff = changes(old, new, ignore)
    raise InputError(f"{run_dir} holds {what} of a different configuration ({'; '.join(diff) or 'settings differ'}): "
                     f"{_choices(run_dir)}")


def _refuse_key(run_dir: Path, what: str, old: str | None, new: str) -> None:
    raise InputError(f"{run_dir} holds {what} made with another key (key fingerprint {old}; this run's key has "
                     f"{new}): {_choices(run_dir)}")


def finished_run(cfg: DictConfig, run_dir: Path, cipher: ciphers.Cipher, summary: Callable,
                 redo: str) -> dict | None:
    """Unless force=true, the finished run of this configuration and key in the run directory
    (printing its summary), if any. A finished run of another key or configuration is refused with
    what changed. Of the `RESUMABLE` settings, more epochs continue a finished training run from its
    checkpoint, fewer are refused (another run), and the others change nothing."""
    metrics = run_dir / METRICS
    if cfg.get("force", False) or not metrics.is_file() or not (done := read_json(metrics)).get("complete"):
        return None
    if done.get("status") == "not_applicable":  # holds no result: a changed cell just runs again
        if done.get("config_digest") != config_digest(cfg):
            print(f"{run_dir}: its configuration changed since it was recorded as not applicable; running it again")
            return None
    elif _extends(cfg, run_dir, cipher, done):
        return None  # more epochs: the run continues from its checkpoint
    print(f"{metrics} is complete; nothing to do (force=true {redo})")
    print(summary(done, run_dir))
    return done


def _extends(cfg: DictConfig, run_dir: Path, cipher: ciphers.Cipher, done: dict) -> bool:
    """Whether this run continues the finished one with more epochs (False: it is that run, nothing
    to do). A finished run of another key or configuration, or of more epochs than asked, is refused."""
    if done.get("identity_version") != IDENTITY_VERSION:
        raise InputError(f"{run_dir} holds a finished run written before a run's identity included its key "
                         f"(an older leia), so nothing tells which key made it: {_choices(run_dir)}")
    now = cipher.fingerprint_for(tuple(done["image_size"]))
    if now != done["key_fingerprint"]:
        _refuse_key(run_dir, "a finished run", done["key_fingerprint"], now)
    if done.get("config_digest") != config_digest(cfg):
        record = read_json(run_dir / RECORD) if (run_dir / RECORD).is_file() else {}
        if not same_identity(record, cfg, RESUMABLE):
            _refuse_changes(run_dir, "a finished run", record.get("config"), computed(cfg))
        if done.get("task") == "train" and cfg.trainer.max_epochs < done.get("epochs", 0):
            raise InputError(f"{run_dir} holds a finished run of {done.get('epochs')} epochs; "
                             f"trainer.max_epochs={cfg.trainer.max_epochs} is another run: give it another name "
                             f"(name=...), or re-run with force=true")
        return done.get("task") == "train" and cfg.trainer.max_epochs > done.get("epochs", 0)
    return False


def identity_digest(cfg: DictConfig) -> str:
    """The digest of what may not change when a run resumes (everything but `RESUMABLE`)."""
    node = flat(computed(cfg))
    return _digest({k: v for k, v in node.items() if k not in RESUMABLE})


def begin(cfg: DictConfig, run_dir: Path, cipher: ciphers.Cipher, image_size: tuple[int, int]) -> str | None:
    """Once the key and image size are known, before any work: refuse to resume a checkpoint of
    another configuration or key, record this run's identity (run.json: the computed config, its
    digests and the key fingerprint; never key material), and return the checkpoint to resume from
    (none with force=true)."""
    last = run_dir / CHECKPOINT
    fingerprint = cipher.fingerprint_for(image_size)
    force = bool(cfg.get("force", False))
    if force and is_rank_zero():  # from scratch: nothing may resume from, or stand for, the old run
        for path in (last, run_dir / METRICS):
            if path.is_file():
                path.replace(path.with_name(f"{path.stem}.before-force{path.suffix}"))
    resume = last.is_file() and not force
    if resume:
        if not zipfile.is_zipfile(last):  # torch checkpoints are zip archives
            raise InputError(f"{last} is empty, truncated or not a checkpoint, so the run cannot resume from it: "
                             f"{_choices(run_dir)}")
        record = read_json(run_dir / RECORD) if (run_dir / RECORD).is_file() else None
        if not same_identity(record, cfg, RESUMABLE):
            _refuse_changes(run_dir, f"a checkpoint ({last})", record and record.get("config"), computed(cfg),
                            ignore=RESUMABLE)
        if record.get("key_fingerprint") != fingerprint:
            _refuse_key(run_dir, f"a checkpoint ({last})", record.get("key_fingerprint"), fingerprint)
    if is_rank_zero():
        write_metrics(run_dir / RECORD, {"identity_version": IDENTITY_VERSION, "identity": identity_digest(cfg),
                                         "config_digest": config_digest(cfg), "key_fingerprint": fingerprint,
                                         "image_size": list(image_size), "config": computed(cfg)})
    if resume:
        print(f"resuming from {last}")
    return str(last) if resume else None


def is_rank_zero() -> bool:
    """Whether this process is the first of its run: every rank variable that is set says 0 (DDP
    processes Lightning starts get LOCAL_RANK/NODE_RANK, also inside an interactive SLURM shell
    whose SLURM_PROCID they inherit; SLURM tasks get SLURM_PROCID; torchrun sets RANK)."""
    return all(int(os.environ[var]) == 0 for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
               if os.environ.get(var) not in (None, ""))


class DirectoryBusy(InputError):
    """Another run holds the directory: nothing may be written there on this run's behalf."""


@contextmanager
def claimed(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this run: a second run into it at the same time is refused.
    An flock, held by the first process only and released when it ends or dies (never stale)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if not is_rank_zero():
        yield
        return
    with open(run_dir / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise DirectoryBusy(f"{run_dir} is in use by another run ({holder}); wait for it to end, or give this "
                                f"run another name (name=...)") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def stops_cleanly(run_dir: Path, record: dict, force: bool = False) -> Iterator[None]:
    """Around fit and test: Lightning ends them on SIGTERM with a SystemExit whose status is 0, and
    SaveOnSignal stops a run after saving on USR2 (no scheduler to requeue it). Both leave
    checkpoints/last.ckpt; record the run as interrupted and exit non-zero, so that a sweep or a
    script sees it. The same command resumes it."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        yield
    except (SIGTERMException, Interrupted) as e:
        name = "SIGTERM" if isinstance(e, SIGTERMException) else e.signal_name
        again = "the same command without force=true resumes it" if force else "the same command resumes it"
        if is_rank_zero():
            finished = (run_dir / METRICS).is_file() and read_json(run_dir / METRICS).get("complete")
            target = run_dir / (INTERRUPTED if finished else METRICS)  # never over a finished run
            write_metrics(target, {**record, "status": "interrupted", "complete": False,
                                   "reason": f"stopped by {name}; {again}"})
            print(status_line({**record, "status": "interrupted", "reason": f"stopped by {name}"}, run_dir), flush=True)
        raise SystemExit(128 + signal.SIGTERM if name == "SIGTERM" else 1) from None


@dataclass(frozen=True)
class Start:
    """What every run knows once it starts work: its key, config digest and start time."""

    cipher: ciphers.Cipher
    digest: str
    time: float


def execute(cfg: DictConfig, run_dir: Path, summary: Callable, redo: str, work: Callable[..., dict],
            choices: dict | None = None) -> dict:
    """The frame of every run: hold its directory, build its key, return the finished run of this
    configuration and key when there is one, else seed everything and `work(cfg, run_dir, start,
    choices)`."""
    run_dir = Path(run_dir)
    with claimed(run_dir):
        cipher = build_cipher(cfg)
        if done := finished_run(cfg, run_dir, cipher, summary, redo):
            return done
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        keep_freed_memory()  # CPU steps would otherwise page-fault their activations back in (hostmem.py)
        return work(cfg, run_dir, Start(cipher, config_digest(cfg), time.time()), choices)


# ---------------------------------------------------------------- loggers and trainer
def wandb_mode() -> str:
    """offline unless credentials are configured (WANDB_API_KEY or a `wandb login`), or WANDB_MODE
    says. With credentials but no route to the W&B server (3 s to connect), offline too, said in one
    line: W&B would otherwise wait for minutes and then fail the run."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    logged_in = netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    if not (os.environ.get("WANDB_API_KEY") or logged_in):
        return "offline"
    return "online" if _reachable(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai") else "offline"


@lru_cache(maxsize=None)  # once per process and server: a sweep's jobs do not each wait
def _reachable(base_url: str) -> bool:
    from urllib.parse import urlparse

    url = urlparse(base_url)
    host, port = url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError as e:
        print(f"W&B credentials are set but {host}:{port} is unreachable ({e}); logging offline (wandb sync later)")
        return False


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


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints go to a temporary file that is then renamed: a full disk or a kill mid-write
    leaves the previous checkpoint, never a truncated one that blocks the next run."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class StepCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (last.ckpt only) that, with `every_n_train_steps`, skips an epoch's
    last batch and saves after the epoch's validation instead: a checkpoint written between the last
    batch and the validation resumed into the next epoch without that validation (its best epoch lost)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._every_n_train_steps and batch_idx + 1 >= trainer.num_training_batches:
            return  # on_train_epoch_end saves it, after validation
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer, pl_module):
        super().on_train_epoch_end(trainer, pl_module)
        if self._every_n_train_steps and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def make_trainer(trainer_cfg: dict, run_dir: Path, loggers: list, checkpoints: bool, callbacks: tuple = (),
                 every_n_steps: int | None = None, **options) -> L.Trainer:
    """The trainer of every run. With checkpoints: last.ckpt at every epoch end, or every
    `every_n_steps` optimizer steps when that is set (and after each epoch's validation), and on
    SIGUSR2 or SIGTERM (`SaveOnSignal`, after the run's own `callbacks`)."""
    callbacks = list(callbacks)
    if checkpoints:
        callbacks.append(SaveOnSignal(run_dir / CHECKPOINT))
        callbacks.append(StepCheckpoint(dirpath=str(run_dir / CHECKPOINT.parent), filename="epoch{epoch}", save_last=True,
                                        save_top_k=0, every_n_train_steps=every_n_steps, auto_insert_metric_name=False))
    return L.Trainer(default_root_dir=str(run_dir), logger=loggers, callbacks=callbacks,
                     enable_checkpointing=checkpoints, plugins=[AtomicCheckpointIO()], **options, **trainer_cfg)


# ---------------------------------------------------------------- end
def finish(trainer: L.Trainer, run_dir: Path, metrics: dict, summary: Callable) -> dict:
    """Write metrics.json (from the main process only) and print the summary line."""
    metrics = {**metrics, "identity_version": IDENTITY_VERSION}
    if trainer.is_global_zero:
        write_metrics(run_dir / METRICS, metrics)
        (run_dir / INTERRUPTED).unlink(missing_ok=True)
        print(summary(metrics, run_dir))
    return metrics


def status_line(record: dict, run_dir: Path) -> str:
    """The line a job prints about a run that did not complete normally."""
    why = record.get("reason") or record.get("error") or ""
    return f"{record['name']}: {record['status'].replace('_', ' ')} ({why}). Record: {Path(run_dir) / METRICS}"
