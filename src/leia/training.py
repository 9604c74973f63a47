"""One training run: build everything from the composed config, check it, train, test, and write
`metrics.json` in the run directory. `train.py` is a thin Hydra entry point around `run(cfg)`.

- Bad configs fail before training starts (unknown names, block size vs image or patch size,
  adapter vs scheme).
- The run directory is named after the run (`name`); running the same command again resumes from
  `checkpoints/last.ckpt`, or does nothing if `metrics.json` says the run is complete (`force=true`
  re-runs it). Mid-epoch checkpoints (`checkpoint.every_n_steps`) resume exactly: the train loader
  is stateful and its order and augmentation depend only on (seed, epoch).
- No key material is written anywhere: configs hold key *sources* (a seed, a path), logs and
  metrics hold the key fingerprint, checkpoints hold weights and a run description.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from . import ciphers, sweeps
from .data.datamodule import DataConfig, EncryptedDataModule, sample_grid
from .data.loading import ResumableLoader
from .errors import InputError
from .models.adapters import create_adapter
from .models.backbones import create_backbone, is_patch_model
from .models.classifier import EncryptedClassifier, OptimConfig, ScheduleConfig
from .models.key_conversion import convert
from .preemption import SaveOnSignal
from .reporting import redact, redacted_yaml, write_metrics

METRICS = "metrics.json"


def _dataclass(cls, node, group: str):
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"unknown {group} setting(s) {', '.join(unknown)}; expected: {', '.join(sorted(names))}")
    return cls(**values)


def build_cipher(cfg: DictConfig) -> ciphers.Cipher:
    return ciphers.from_config(OmegaConf.to_container(cfg.scheme, resolve=True),
                               OmegaConf.to_container(cfg.key, resolve=True))


def build_data(cfg: DictConfig, cipher: ciphers.Cipher) -> EncryptedDataModule:
    data = OmegaConf.to_container(cfg.data, resolve=True)
    data.setdefault("seed", cfg.seed)
    return EncryptedDataModule(_dataclass(DataConfig, data, "data"), cipher)


DEFAULT_PATCH = 4  # for 32×32 inputs, when neither the config nor the scheme fixes it


def model_options(cfg: DictConfig, cipher: ciphers.Cipher) -> dict:
    """Backbone options, with the patch size tied to vit_block's block size (patch models only)."""
    options = dict(OmegaConf.to_container(cfg.model.options, resolve=True) or {})
    if is_patch_model(cfg.model.backbone, options):
        asked = options.get("patch_size")
        if cipher.name == "vit_block":
            if asked not in (None, cipher.block_size):
                raise InputError(
                    f"vit_block encrypts {cipher.block_size}x{cipher.block_size} blocks, so the model's patch size "
                    f"must be {cipher.block_size}, not {asked} (set scheme.block_size or model.options.patch_size)"
                )
            options["patch_size"] = cipher.block_size
        elif asked is None:
            options["patch_size"] = DEFAULT_PATCH
    return options


def build_model(cfg: DictConfig, dm: EncryptedDataModule, cipher: ciphers.Cipher,
                description: dict | None = None) -> EncryptedClassifier:
    c, h, w = dm.input_shape
    adapter_options = dict(OmegaConf.to_container(cfg.adapter.options, resolve=True) or {})
    adapter = create_adapter(cfg.adapter.name, c, cipher, **adapter_options)
    options = model_options(cfg, cipher)
    patch = options.get("patch_size")
    if patch and (h % patch or w % patch):
        raise InputError(f"the model's patch size {patch} does not divide its {h}x{w} input")
    backbone = create_backbone(cfg.model.backbone, dm.num_classes, adapter.out_channels, (h, w),
                               checkpoint=cfg.model.get("checkpoint"), **options)
    return EncryptedClassifier(
        backbone, adapter, dm.num_classes,
        _dataclass(OptimConfig, cfg.optimizer, "optimizer"),
        _dataclass(ScheduleConfig, cfg.scheduler, "scheduler"),
        max_epochs=cfg.trainer.max_epochs,
        description=description or describe(cfg, cipher),
    )


def describe(cfg: DictConfig, cipher: ciphers.Cipher, choices: dict | None = None) -> dict[str, Any]:
    """What identifies a run in logs and metrics.json: names and the key fingerprint, no key."""
    choices = choices or {}
    return {
        "name": cfg.name,
        "scheme": cipher.name,
        "scheme_config": choices.get("scheme", cipher.name),
        "scheme_params": cipher.config(),
        "key_fingerprint": cipher.fingerprint,
        "model": cfg.model.name,
        "adapter": cfg.adapter.name,
        "data": cfg.data.name,
        "seed": cfg.seed,
    }


class LoaderProgress(L.Callback):
    """Tells the stateful train loader how many batches the loop has finished, before any
    checkpoint callback saves (Lightning runs checkpoint callbacks last)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loader = trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            loader.batches_done = batch_idx + 1

    def on_train_epoch_start(self, trainer, pl_module):
        loader = trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            loader.batches_done = 0


def wandb_mode() -> str:
    """offline unless credentials are configured (WANDB_API_KEY or a `wandb login`), or WANDB_MODE says."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    logged_in = netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    return "online" if os.environ.get("WANDB_API_KEY") or logged_in else "offline"


def build_loggers(cfg: DictConfig, run_dir: Path, description: dict, job_type: str = "train") -> list:
    from lightning.pytorch.loggers import CSVLogger

    # One numbered directory per attempt: a resumed run must not overwrite the interrupted one's log.
    loggers = [CSVLogger(save_dir=str(run_dir), name="csv")]
    if cfg.logger.name == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        mode = wandb_mode()
        loggers.insert(0, WandbLogger(
            project=cfg.logger.project, group=sweeps.wandb_group(cfg), tags=list(cfg.logger.get("tags") or []),
            job_type=job_type, name=cfg.name, save_dir=str(run_dir), offline=mode == "offline",
            config={"run": description, "config": redact(OmegaConf.to_container(cfg, resolve=True))},
        ))
    elif cfg.logger.name != "csv":
        raise InputError(f"logger must be wandb or csv, got {cfg.logger.name!r}")
    return loggers


def log_samples(loggers: list, dm: EncryptedDataModule, run_dir: Path) -> None:
    """A grid of plain (top) and encrypted (bottom) training images: a PNG in the run directory,
    and an image on W&B."""
    from lightning.pytorch.loggers import WandbLogger
    from torchvision.utils import save_image

    grid = sample_grid(dm)
    save_image(grid.float() / 255, run_dir / "samples.png")
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key="samples/plain_top_encrypted_bottom", images=[grid.permute(1, 2, 0).numpy()])


def make_trainer(cfg: DictConfig, run_dir: Path, loggers: list, checkpoints: bool) -> L.Trainer:
    from lightning.pytorch.callbacks import ModelCheckpoint

    check_ddp_launch(cfg)
    callbacks = [LoaderProgress()]
    if checkpoints:
        callbacks.append(SaveOnSignal(run_dir / "checkpoints" / "last.ckpt"))  # after LoaderProgress
        every = cfg.checkpoint.get("every_n_steps") or None
        callbacks.append(ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="epoch{epoch}", save_last=True,
                                         save_top_k=0, every_n_train_steps=every, auto_insert_metric_name=False))
    return L.Trainer(default_root_dir=str(run_dir), logger=loggers, callbacks=callbacks,
                     use_distributed_sampler=False, **OmegaConf.to_container(cfg.trainer, resolve=True))


def check_ddp_launch(cfg: DictConfig) -> None:
    """Lightning starts local DDP processes by re-running the command line, which cannot re-enter a
    Hydra multirun; under SLURM the processes come from srun instead."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    strategy = str(cfg.trainer.get("strategy") or "")
    if strategy.startswith("ddp") and "spawn" not in strategy and sweeps.in_sweep() and not SLURMEnvironment.detect():
        raise InputError(f"trainer.strategy={strategy} in a local sweep (-m): Lightning would start the extra processes "
                         f"by re-running the whole sweep. Submit DDP sweeps with launcher=slurm "
                         f"(hydra.launcher.tasks_per_node = processes), or run each DDP job without -m")


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


PLACEMENT = ("devices", "num_nodes", "strategy", "enable_progress_bar", "log_every_n_steps")


def config_digest(cfg: DictConfig) -> str:
    """Identifies what a run computes (not where it writes or logs), so that a finished run is only
    reused for the same configuration."""
    import hashlib

    node = OmegaConf.to_container(cfg, resolve=True)
    for k in ("force", "paths", "logger", "name", "sweep"):
        node.pop(k, None)
    for k in PLACEMENT:  # how many processes compute it, not what they compute
        node.get("trainer", {}).pop(k, None)
    return hashlib.sha256(json.dumps(redact(node), sort_keys=True, default=str).encode()).hexdigest()[:16]


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


def finished_run(cfg: DictConfig, run_dir: Path, digest: str, summary, redo: str) -> dict | None:
    """The shared start of a run (training or attack): create its directory and, unless force=true,
    return the finished run of this configuration there (printing its summary), if any."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("force", False) or not (done := completed(run_dir / METRICS, digest)):
        return None
    print(f"{run_dir / METRICS} is complete; nothing to do (force=true {redo})")
    print(summary(done, run_dir))
    return done


def run(cfg: DictConfig, run_dir: Path, choices: dict | None = None) -> dict:
    """Train (or convert) and test one configuration; returns what metrics.json holds. `choices`
    are Hydra's config-group choices (e.g. scheme: skk_per_image), recorded in metrics.json."""
    run_dir = Path(run_dir)
    force = bool(cfg.get("force", False))
    digest = config_digest(cfg)
    if done := finished_run(cfg, run_dir, digest, summary, redo="trains again from scratch"):
        return done
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    start = time.time()

    # Build and check everything before any training starts.
    cipher = build_cipher(cfg)
    dm = build_data(cfg, cipher)
    dm.setup()
    description = describe(cfg, cipher, choices)
    model = build_model(cfg, dm, cipher, description)
    converting = bool(cfg.get("convert") and cfg.convert.get("checkpoint"))
    if converting:
        model.model.backbone = convert_backbone(cfg, dm, cipher, model.model.backbone)
    print(redacted_yaml(cfg))
    print(f"cipher: {cipher!r}; input {dm.input_shape}; {len(dm.train_data)} train / {len(dm.test_data)} test images")

    loggers = build_loggers(cfg, run_dir, description)
    trainer = make_trainer(cfg, run_dir, loggers, checkpoints=not converting)
    if trainer.is_global_zero:
        log_samples(loggers, dm, run_dir)
    best = None
    if not converting:
        last = run_dir / "checkpoints" / "last.ckpt"
        resume = last.is_file() and not force
        if resume:
            print(f"resuming from {last}")
        trainer.fit(model, datamodule=dm, ckpt_path=str(last) if resume else None)
        best = _value(trainer.callback_metrics.get("val/acc1_best"))  # the papers report the best epoch
    results = trainer.test(model, datamodule=dm, verbose=False)
    test = {k: float(v) for r in results for k, v in r.items()}
    metrics = {
        **description,
        "task": "convert" if converting else "train",
        **sweeps.extra(cfg),
        "complete": True,
        "config_digest": digest,
        "test": {k.split("/", 1)[1]: v for k, v in test.items() if k.startswith("test/")},
        "test_plain": {k.split("/", 1)[1]: v for k, v in test.items() if k.startswith("test_plain/")},
        "best_val_acc1": best,
        "epochs": trainer.current_epoch,
        "train_images": len(dm.train_data),
        "test_images": len(dm.test_data),
        "num_classes": dm.num_classes,
        "chance_acc1": 1.0 / dm.num_classes,
        "duration_s": round(time.time() - start, 1),
    }
    row = {k: metrics[k] for k in ("name", "scheme_config", "model", "adapter", "seed", "key_seed")}
    close_loggers(loggers, metrics["test"], run_dir, row={**row, **metrics["test"], "best_val_acc1": best})
    if trainer.is_global_zero:
        write_metrics(run_dir / METRICS, metrics)
        print(summary(metrics, run_dir))
    return metrics


def summary(metrics: dict, run_dir: Path) -> str:
    """One line a person reads at the end of a run."""
    if metrics.get("status", "complete") != "complete":
        return sweeps.status_line(metrics, run_dir)
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"

    line = (f"{metrics['name']}: test top-1 {pct(metrics['test'].get('acc1'))} on {metrics['scheme']}-encrypted images"
            f" (chance {pct(metrics['chance_acc1'])}")
    if metrics.get("best_val_acc1") is not None:
        line += f", best epoch {pct(metrics['best_val_acc1'])}"
    if metrics.get("test_plain"):
        line += f"; on plain images {pct(metrics['test_plain'].get('acc1'))}"
    return line + f"). Results: {run_dir / METRICS}"


def convert_backbone(cfg: DictConfig, dm: EncryptedDataModule, cipher: ciphers.Cipher, backbone):
    """Load a plain-trained backbone and convert it with the key (vit_block): no training."""
    from .models.backbones import load_weights

    if cfg.adapter.name != "none":
        raise InputError("key conversion replaces training; use adapter=none")
    load_weights(backbone, cfg.convert.checkpoint)
    return convert(backbone, cipher, dm.image_size, dm.cfg.mean, dm.cfg.std)


def _value(v) -> float | None:
    return None if v is None else float(v.item() if isinstance(v, torch.Tensor) else v)
