"""One attack run: `python attack.py scheme=<s> attack=<a>` (a thin Hydra entry point around `run`).

The run plays both roles and keeps them apart:
- the victim (data owner) encrypts its images with its key: the test split of `data` (at most
  `victims.limit` images, class-balanced);
- the attacker gets the ciphertexts, the scheme's name and parameters, and what its threat model
  grants (`leia.attacks.base.Access`): an encryption oracle (CPA), known pairs made from other test
  images (KPA), or, for learned attacks, its own images (the train split, disjoint from the victims)
  and its own random keys;
- the evaluator scores every reconstruction against the plain image (SSIM, grayscale SSIM, PSNR,
  exact bytes; `leia.attacks.metrics`) and, where a key is recovered, against the victim's key.
Analytic attacks run as a Lightning test loop; learned ones fit first (checkpointed, resumable).
Outputs in the run directory: metrics.json, per_image.csv, grid.png (plain | encrypted |
reconstruction rows), CSV/W&B logs. No key material is written.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanMetric

from . import attacks, runs
from .attacks.base import Access, Attack, cipher_view
from .attacks.metrics import image_metrics
from .data.datamodule import DataConfig
from .data.sources import Images, load_split
from .errors import InputError
from .reporting import redacted_yaml
from .runs import METRICS, build_cipher, settings


# ---------------------------------------------------------------- building blocks
def build_attack(cfg: DictConfig) -> Attack:
    node = OmegaConf.to_container(cfg.attack, resolve=True)
    return attacks.create(node.pop("name"), **node)


def source_options(cfg: DictConfig) -> tuple[str, dict]:
    data = runs.values(cfg.data)
    data.setdefault("seed", cfg.seed)
    dc = settings(DataConfig, data, "data")
    options = {"root": dc.root, "format": dc.format, "download": dc.download or None, "size": dc.size}
    return dc.name, {k: v for k, v in options.items() if v is not None}


def images_after(test: Images, limit: int | None, count: int) -> Images:
    """`count` images of `test`, class-balanced, after its first `limit` (class-balanced) ones."""
    if limit is None or limit >= len(test):
        raise InputError(f"attack.holdout={count} needs test images beyond the victims; set victims.limit below "
                         f"the {len(test)} test images")
    taken = test.per_class(limit, "victims.limit")  # as Images.subset picks the victims
    after = [torch.nonzero(test.labels == c).flatten()[taken[c]:].tolist() for c in range(len(test.classes))]
    rounds = max(map(len, after), default=0)
    order = [rest[i] for i in range(rounds) for rest in after if i < len(rest)]  # one of every class in turn
    if len(order) < count:
        raise InputError(f"attack.holdout={count}: only {len(order)} test images follow the {limit} victims")
    keep = torch.tensor(sorted(order[:count]))
    return Images(test.images[keep], test.labels[keep], test.classes, "holdout")


def victim_images(cfg: DictConfig, known: int, holdout: int = 0) -> tuple[Images, Images | None, Images | None]:
    """From the test split (decoded once): the victims; for KPA, `known` further test images whose
    pairs the attacker knows; and `holdout` test images after the victims, class-balanced, under the
    victim key but never shown to the attack (they test a recovered key, not per-image fitting)."""
    name, options = source_options(cfg)
    test = load_split(name, "test", **options)
    limit = cfg.victims.limit
    if limit is not None:
        test.per_class(limit, "victims.limit")  # at least one victim per class, exactly `limit` in all
    held = images_after(test, limit, holdout) if holdout else None
    if known:
        pool = test.subset(None if limit is None else limit + known, "victims.limit + attack.known_images")
        if len(pool) <= known:
            raise InputError(f"a KPA with {known} known images needs more than {known} test images; found {len(pool)}")
        return _take(pool, slice(0, len(pool) - known)), _take(pool, slice(len(pool) - known, None)), held
    return test.subset(limit), None, held


def attacker_images(cfg: DictConfig) -> Images:
    name, options = source_options(cfg)
    return load_split(name, "train", **options).subset(cfg.attacker.limit, "attacker.limit")


def _take(images: Images, part: slice) -> Images:
    return Images(images.images[part], images.labels[part], images.classes, images.split)


def victim_ids(indices) -> list[str]:
    return [f"victim/{int(i)}" for i in indices]


# ---------------------------------------------------------------- the Lightning task
class AttackTask(L.LightningModule):
    """Runs an attack against the victim's ciphertexts and scores it. Learned attacks (nn.Modules)
    are trained by `training_step` on the attacker's own images (manual optimisation: the attack
    owns its optimisers, e.g. a GAN's two)."""

    def __init__(self, attack: Attack, victim, grid_images: int = 8):
        super().__init__()
        self.attack = attack  # registered as a submodule when it is an nn.Module (learned attacks)
        self._victim = victim  # not a module, never in a state_dict
        self.grid_images = grid_images
        self.automatic_optimization = False
        self.means: dict[str, MeanMetric] = {}
        self.rows: list[dict] = []
        self.grid: list[torch.Tensor] = []

    # learned attacks
    def configure_optimizers(self):
        return self.attack.configure_optimizers() if self.attack.learned else None

    def training_step(self, batch, batch_idx):
        logs = self.attack.train_step(self, batch[0])
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, prog_bar=True, on_step=True, on_epoch=False)

    # evaluation
    def _mean(self, name: str, values: torch.Tensor) -> None:
        if name not in self.means:
            self.means[name] = MeanMetric().to(values.device)
        self.means[name].update(values.float())

    def test_step(self, batch, batch_idx):
        plain, index = batch
        ids = victim_ids(index) if self._victim.needs_ids else None
        y = self._victim.encrypt(plain, ids=ids)
        with torch.no_grad():
            outcome = self.attack.reconstruct(y, hint=self.attack.hint(plain))
        recon = outcome.images
        if recon.shape != plain.shape or recon.dtype != torch.uint8:
            raise RuntimeError(f"attack {self.attack.name} returned {tuple(recon.shape)} {recon.dtype}, expected "
                               f"{tuple(plain.shape)} uint8")
        encrypted = cipher_view(y)
        per_image = {**image_metrics(recon, plain),
                     **{f"baseline_{k}": v for k, v in image_metrics(encrypted, plain).items()},
                     **{k: v.to(plain.device) for k, v in self.attack.score(outcome, self._victim, plain, ids).items()}}
        for k, v in per_image.items():
            self._mean(k, v)
        for i in range(len(plain)):
            self.rows.append({"index": int(index[i]), **{k: float(v[i]) for k, v in per_image.items()}})
        have = sum(len(g[0]) for g in self.grid)
        if have < self.grid_images:
            n = self.grid_images - have
            self.grid.append((plain[:n].cpu(), encrypted[:n].cpu(), recon[:n].cpu()))

    def on_test_epoch_end(self):
        self.results = {k: float(m.compute()) for k, m in self.means.items()}
        self.log_dict({f"test/{k}": v for k, v in self.results.items()})


def grid_image(parts: list) -> torch.Tensor:
    """uint8 [3, 3h, n·w]: plain (top), encrypted (middle), reconstruction (bottom) rows."""
    from torchvision.utils import make_grid

    plain, enc, rec = (torch.cat([p[i] for p in parts]) for i in range(3))
    if enc.shape[-1] != plain.shape[-1]:
        enc = enc[..., : plain.shape[-1]]
    return make_grid(torch.cat([plain, enc, rec]), nrow=len(plain), padding=2, pad_value=255)


# ---------------------------------------------------------------- one run
def run(cfg: DictConfig, run_dir: Path, choices: dict | None = None) -> dict:
    run_dir = Path(run_dir)
    with runs.claimed(run_dir):
        return _run(cfg, run_dir, choices)


def _run(cfg: DictConfig, run_dir: Path, choices: dict | None) -> dict:
    digest = runs.config_digest(cfg)
    cipher = build_cipher(cfg)
    if done := runs.finished_run(cfg, run_dir, cipher, summary, redo="runs it again"):
        return done
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    start = time.time()

    # Build and check everything before any work: unknown names, applicability, sizes.
    attack = build_attack(cfg)
    attack.check(cipher.name, cipher.config())
    known_n = getattr(attack.params, "known_images", 0) if attack.threat == "KPA" else 0
    holdout_n = getattr(attack.params, "holdout", 0)
    victims, known, holdout = victim_images(cfg, known_n, holdout_n)
    h, w = victims.images.shape[-2:]
    cipher.check_size(h, w)
    attacker = attacker_images(cfg) if attack.learned else None
    description = runs.describe(cfg, "attack", choices, cipher, (h, w), attack)
    resume = runs.begin(cfg, run_dir, cipher, (h, w))
    print(redacted_yaml(cfg))
    print(f"victim: {cipher!r}, {len(victims)} images {h}x{w}; attack {attack.name} ({attack.threat})"
          + (f"; attacker: {len(attacker)} own images" if attacker is not None else ""))

    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    if str(trainer_cfg.get("strategy") or "").startswith("ddp"):
        # per-image rows, the grid and the attacks' own state live in one process
        raise InputError(f"attack.py runs on one device; trainer.strategy={trainer_cfg['strategy']} is for train.py "
                         f"(use trainer=cpu or trainer=gpu)")
    device = torch.device("cuda" if trainer_cfg.get("accelerator") == "gpu" and torch.cuda.is_available() else "cpu")
    access = Access(scheme=cipher.name, params=cipher.config(), image_size=(h, w), device=device)
    if attack.threat == "CPA":
        chosen = iter(range(10**9))
        access.oracle = lambda x: cipher.encrypt(x, ids=[f"chosen/{next(chosen)}" for _ in range(len(x))]
                                                 if cipher.needs_ids else None)
    if known is not None:
        kid = [f"known/{i}" for i in range(len(known))] if cipher.needs_ids else None
        access.known = (known.images, cipher.encrypt(known.images, ids=kid))
    attack.prepare(access)

    task = AttackTask(attack, cipher, grid_images=cfg.grid.images)
    loggers = runs.build_loggers(cfg, run_dir, description, job_type="attack")
    trainer_cfg["max_epochs"] = attack.params.epochs if attack.learned else 1
    trainer = runs.make_trainer(trainer_cfg, run_dir, loggers, checkpoints=attack.learned)
    victims_loader = DataLoader(TensorDataset(victims.images, torch.arange(len(victims))),
                                batch_size=cfg.victims.batch_size, shuffle=False)
    with runs.stops_cleanly(run_dir, {**description, **runs.run_fields(cfg), "config_digest": digest}):
        if attack.learned:
            loader = DataLoader(TensorDataset(attacker.images), batch_size=attack.params.batch_size, shuffle=True,
                                drop_last=len(attacker) > attack.params.batch_size,
                                generator=torch.Generator().manual_seed(cfg.seed))
            trainer.fit(task, train_dataloaders=loader, ckpt_path=resume)
        if attack.observes:  # the attacker studies every ciphertext before reconstructing any
            for plain, index in victims_loader:
                attack.observe(cipher.encrypt(plain, ids=victim_ids(index) if cipher.needs_ids else None))
        trainer.test(task, dataloaders=victims_loader, verbose=False)

    results = task.results
    if holdout is not None:
        results.update(score_holdout(attack, cipher, holdout))
    metrics = {
        **description,
        **runs.run_fields(cfg),
        "complete": True,
        "config_digest": digest,
        "applicable": True,
        "metrics": {k: v for k, v in results.items() if not k.startswith("baseline_")},
        "baseline_encrypted": {k.removeprefix("baseline_"): v for k, v in results.items() if k.startswith("baseline_")},
        "key": attack.key_metrics(cipher),
        "summary": attack.summary(),
        "victim_images": len(victims),
        "image_size": [h, w],
        "known_images": known_n,
        "holdout_images": 0 if holdout is None else len(holdout),
        "attacker_images": None if attacker is None else len(attacker),
        "epochs": trainer.current_epoch if attack.learned else 0,
        "ssim": {"window": 11, "sigma": 1.5, "data_range": 255, "gray": "BT.601 luma"},
        "duration_s": round(time.time() - start, 1),
    }
    if trainer.is_global_zero:
        _write_outputs(run_dir, task, loggers)
    row = {k: metrics[k] for k in ("name", "scheme_config", "attack", "threat", "seed", "key_seed")}
    runs.close_loggers(loggers, results, run_dir, row={**row, **metrics["metrics"], "encrypted_ssim": results["baseline_ssim"]})
    return runs.finish(trainer, run_dir, metrics, summary)


def score_holdout(attack: Attack, victim, holdout: Images) -> dict[str, float]:
    """Decrypt the held-out images (encrypted by the victim, never shown to the attack) with the key
    the attack recovered, and score them as the victims are scored."""
    from .attacks.metrics import exact_bytes, ssim

    estimate = attack.recovered_cipher()
    if estimate is None:
        raise InputError(f"attack {attack.name} recovers no key, so it has nothing to decrypt held-out images with")
    plain = holdout.images
    decrypted = estimate.decrypt(victim.encrypt(plain))
    return {"holdout_ssim": float(ssim(decrypted, plain).mean()),
            "holdout_ssim_up_to_global": float(ssim(attack.align(decrypted, victim), plain).mean()),
            "holdout_exact_bytes": float(exact_bytes(decrypted, plain).mean())}


def _write_outputs(run_dir: Path, task: AttackTask, loggers: list) -> None:
    from lightning.pytorch.loggers import WandbLogger
    from torchvision.utils import save_image

    grid = grid_image(task.grid)
    save_image(grid.float() / 255, run_dir / "grid.png")
    rows = sorted(task.rows, key=lambda r: r["index"])
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key="attack/plain_encrypted_reconstruction", images=[grid.permute(1, 2, 0).numpy()])
            logger.log_table(key="attack/per_image", columns=list(rows[0]), data=[list(r.values()) for r in rows])
    with open(run_dir / "per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def summary(metrics: dict, run_dir: Path) -> str:
    if metrics.get("status", "complete") != "complete":
        return runs.status_line(metrics, run_dir)
    m, base = metrics["metrics"], metrics["baseline_encrypted"]
    line = (f"{metrics['name']}: {metrics['attack']} ({metrics['threat']}) on {metrics['scheme']}: "
            f"SSIM {m['ssim']:.4f} (encrypted image itself {base['ssim']:.4f}), PSNR {m['psnr']:.2f} dB, "
            f"exact bytes {100 * m['exact_bytes']:.2f}%")
    if "key_recovered_fraction" in metrics.get("key", {}):
        line += f", key recovered {100 * metrics['key']['key_recovered_fraction']:.2f}%"
    if "key_recovered_fraction_up_to_global" in metrics.get("key", {}):
        line += f" ({100 * metrics['key']['key_recovered_fraction_up_to_global']:.2f}% up to global symmetry)"
    if "holdout_ssim" in m:
        line += (f"; {metrics['holdout_images']} held-out images decrypt at SSIM {m['holdout_ssim']:.4f} "
                 f"({m['holdout_ssim_up_to_global']:.4f} up to global symmetry)")
    return line + f" over {metrics['victim_images']} images. Results: {run_dir / METRICS}"
