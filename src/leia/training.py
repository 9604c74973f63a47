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

import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from . import ciphers, runs
from .data.datamodule import DataConfig, EncryptedDataModule, sample_grid
from .data.loading import ResidentLoader, ResumableLoader
from .errors import InputError
from .models.adapters import create_adapter
from .models.averaging import ScaledEMA
from .models.backbones import create_backbone, is_patch_model
from .models.classifier import EncryptedClassifier, OptimConfig, ScheduleConfig
from .models.key_conversion import convert
from .records import redacted_yaml
from .runs import METRICS, settings


def build_data(cfg: DictConfig, cipher: ciphers.Cipher) -> EncryptedDataModule:
    data = runs.values(cfg.data)
    data.setdefault("seed", cfg.seed)
    return EncryptedDataModule(settings(DataConfig, data, "data"), cipher)


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


def fastnet_stem(options: dict, cipher: ciphers.Cipher, adapter: str) -> dict:
    """The fast net's stem for this scheme (models/fastnet.py): `auto` is a learned stem after an
    adapter, a block-aligned whitening stem for block-wise schemes, and 2×2 whitening otherwise."""
    options = dict(options)
    stem = options.get("stem", "auto")
    if stem == "auto":
        stem = "learned" if adapter != "none" else ("block" if cipher.block_size > 1 else "whiten")
    options["stem"] = stem
    if stem == "block":
        asked = options.get("block_size")
        if cipher.block_size > 1 and asked not in (None, cipher.block_size):
            raise InputError(f"model.options.block_size={asked}: the block stem must see whole {cipher.name} blocks "
                             f"of {cipher.block_size}x{cipher.block_size}")
        options["block_size"] = cipher.block_size if cipher.block_size > 1 else (asked or DEFAULT_PATCH)
    else:
        options.pop("block_size", None)
    return options


def build_model(cfg: DictConfig, dm: EncryptedDataModule, cipher: ciphers.Cipher,
                description: dict | None = None) -> EncryptedClassifier:
    c, h, w = dm.input_shape
    adapter_options = dict(OmegaConf.to_container(cfg.adapter.options, resolve=True) or {})
    adapter = create_adapter(cfg.adapter.name, c, cipher, **adapter_options)
    options = model_options(cfg, cipher)
    if cfg.model.backbone == "fastnet":
        options = fastnet_stem(options, cipher, cfg.adapter.name)
    patch = options.get("patch_size")
    if patch and (h % patch or w % patch):
        raise InputError(f"the model's patch size {patch} does not divide its {h}x{w} input")
    backbone = create_backbone(cfg.model.backbone, dm.num_classes, adapter.out_channels, (h, w),
                               checkpoint=cfg.model.get("checkpoint"), **options)
    return EncryptedClassifier(
        backbone, adapter, dm.num_classes,
        settings(OptimConfig, cfg.optimizer, "optimizer"),
        settings(ScheduleConfig, cfg.scheduler, "scheduler"),
        max_epochs=cfg.trainer.max_epochs,
        description=description or runs.describe(cfg, "train", cipher=cipher, image_size=dm.image_size),
        kl_weight=float(getattr(cipher.params, "kl_weight", 0.0)),
    )


class LoaderProgress(L.Callback):
    """Tells the stateful train loader how many batches the loop has finished, before any
    checkpoint callback saves (Lightning runs checkpoint callbacks last)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loader = trainer.train_dataloader
        if isinstance(loader, (ResumableLoader, ResidentLoader)):
            loader.batches_done = batch_idx + 1

    def on_train_epoch_start(self, trainer, pl_module):
        loader = trainer.train_dataloader
        if isinstance(loader, (ResumableLoader, ResidentLoader)):
            loader.batches_done = 0


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
    """`runs.make_trainer` with the stateful loader's progress recorded before any checkpoint, and
    the data module's own per-process sampling."""
    check_ddp_launch(cfg)
    callbacks = [LoaderProgress()]
    if cfg.scheduler.get("ema"):
        callbacks.append(ScaledEMA(cfg.scheduler.ema, cfg.scheduler.get("ema_start", 0.0)))
    return runs.make_trainer(OmegaConf.to_container(cfg.trainer, resolve=True), run_dir, loggers, checkpoints,
                             callbacks=tuple(callbacks), every_n_steps=cfg.checkpoint.get("every_n_steps") or None,
                             use_distributed_sampler=False)


def check_ddp_launch(cfg: DictConfig) -> None:
    """Lightning starts local DDP processes by re-running the command line, which cannot re-enter a
    Hydra multirun; under SLURM the processes come from srun instead."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    strategy = str(cfg.trainer.get("strategy") or "")
    if strategy.startswith("ddp") and "spawn" not in strategy and runs.in_sweep() and not SLURMEnvironment.detect():
        raise InputError(f"trainer.strategy={strategy} in a local sweep (-m): Lightning would start the extra processes "
                         f"by re-running the whole sweep. Submit DDP sweeps with launcher=slurm "
                         f"(hydra.launcher.tasks_per_node = processes), or run each DDP job without -m")


def run(cfg: DictConfig, run_dir: Path, choices: dict | None = None) -> dict:
    """Train (or convert) and test one configuration; returns what metrics.json holds. `choices`
    are Hydra's config-group choices (e.g. scheme: skk_per_image), recorded in metrics.json."""
    return runs.execute(cfg, run_dir, summary, "trains again from scratch", _train, choices)


def _train(cfg: DictConfig, run_dir: Path, start: runs.Start, choices: dict | None) -> dict:
    cipher, digest = start.cipher, start.digest
    # Build and check everything before any training starts.
    dm = build_data(cfg, cipher)
    dm.setup()
    description = runs.describe(cfg, "train", choices, cipher, dm.image_size)
    model = build_model(cfg, dm, cipher, description)
    converting = bool(cfg.get("convert") and cfg.convert.get("checkpoint"))
    if converting:
        model.model.backbone = convert_backbone(cfg, dm, cipher, model.model.backbone)
    if not converting and not cfg.model.get("checkpoint"):  # a checkpoint's stem is already fitted
        model.fit_to_data(dm.fit_sample)
    resume = runs.begin(cfg, run_dir, cipher, dm.image_size)
    print(redacted_yaml(cfg))
    print(f"cipher: {cipher!r}; input {dm.input_shape}; {len(dm.train_data)} train / {len(dm.test_data)} test images")

    loggers = runs.build_loggers(cfg, run_dir, description, job_type="train")
    trainer = make_trainer(cfg, run_dir, loggers, checkpoints=not converting)
    if trainer.is_global_zero:
        log_samples(loggers, dm, run_dir)
    best = None
    with runs.stops_cleanly(run_dir, {**description, **runs.run_fields(cfg), "config_digest": digest},
                            force=bool(cfg.get("force", False))):
        if not converting:
            trainer.fit(model, datamodule=dm, ckpt_path=resume)
            best = _value(trainer.callback_metrics.get("val/acc1_best"))  # the papers report the best epoch
        results = trainer.test(model, datamodule=dm, verbose=False)
    test = {k: float(v) for r in results for k, v in r.items()}
    metrics = {
        **description,
        "task": "convert" if converting else "train",
        **runs.run_fields(cfg),
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
        "duration_s": round(time.time() - start.time, 1),
    }
    one_view = {k.split("/", 1)[1]: v for k, v in test.items() if k.startswith("test_one_view/")}
    if one_view:  # `test` averages the client's views (scramblemix's T, data.client_tta's); this is view 0 alone
        metrics["test_one_view"] = one_view
    row = {k: metrics[k] for k in ("name", "scheme_config", "model", "adapter", "seed", "key_seed")}
    row["client_tta"] = metrics.get("client_tta", "none")  # in every run's table, so a sweep's tables stack
    runs.close_loggers(loggers, metrics["test"], run_dir, row={**row, **metrics["test"], "best_val_acc1": best})
    return runs.finish(trainer, run_dir, metrics, summary)


def summary(metrics: dict, run_dir: Path) -> str:
    """One line a person reads at the end of a run."""
    if metrics.get("status", "complete") != "complete":
        return runs.status_line(metrics, run_dir)
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"

    line = (f"{metrics['name']}: test top-1 {pct(metrics['test'].get('acc1'))} on {metrics['scheme']}-encrypted images"
            f" (chance {pct(metrics['chance_acc1'])}")
    if metrics.get("best_val_acc1") is not None:
        line += f", best epoch {pct(metrics['best_val_acc1'])}"
    if metrics.get("client_tta"):  # the best epoch is validation's, on one view
        line += (f"; the test averages the client's views ({metrics['client_tta']}): the image's own ciphertext "
                 f"alone scores {pct(metrics['test_one_view'].get('acc1'))}")
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
