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
The run's steps are named: `prepare` (build and check everything), `grant_access` (the threat
model), `fit` (learned attacks, checkpointed and resumable), `observe` (attacks that pool every
ciphertext first), then the test loop of `attacks.task.AttackTask` reconstructs and scores.
Outputs in the run directory: metrics.json, per_image.csv, grid.png (plain | encrypted |
reconstruction rows), CSV/W&B logs. No key material is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from . import attacks, runs
from .attacks.base import Access, Attack
from .attacks.lpips import LPIPS, NOT_COMPUTED
from .attacks.task import AttackTask, victim_ids, write_outputs
from .data.datamodule import DataConfig
from .data.sources import Images, load_split
from .errors import InputError
from .records import redacted_yaml
from .runs import METRICS, settings


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


# ---------------------------------------------------------------- one run
def run(cfg: DictConfig, run_dir: Path, choices: dict | None = None) -> dict:
    """Attack one configuration; returns what metrics.json holds."""
    return runs.execute(cfg, run_dir, summary, "runs it again", _attack, choices)


@dataclass
class Setting:
    """Everything an attack run is built from, checked before any work."""

    attack: Attack
    victims: Images
    known: Images | None  # KPA: the pairs the attacker knows
    holdout: Images | None  # encrypted under the victim key, never shown to the attack
    attacker: Images | None  # learned attacks: the attacker's own images
    size: tuple[int, int]


def prepare(cfg: DictConfig, cipher) -> Setting:
    """Build and check everything before any work: unknown names, applicability, sizes, the data."""
    attack = build_attack(cfg)
    attack.check(cipher.name, cipher.config())
    if str(cfg.trainer.get("strategy") or "").startswith("ddp"):
        # per-image rows, the grid and the attacks' own state live in one process
        raise InputError(f"attack.py runs on one device; trainer.strategy={cfg.trainer.strategy} is for train.py "
                         f"(use trainer=cpu or trainer=gpu)")
    known_n = getattr(attack.params, "known_images", 0) if attack.threat == "KPA" else 0
    victims, known, holdout = victim_images(cfg, known_n, getattr(attack.params, "holdout", 0))
    h, w = victims.images.shape[-2:]
    cipher.check_size(h, w)
    attacker = attacker_images(cfg) if attack.learned else None
    return Setting(attack, victims, known, holdout, attacker, (h, w))


def grant_access(cfg: DictConfig, setting: Setting, cipher) -> Access:
    """What the attack's threat model grants (the victim cipher itself never leaves the evaluator):
    an encryption oracle (CPA) or the known pairs (KPA), on the run's device."""
    accelerator = cfg.trainer.get("accelerator")
    device = torch.device("cuda" if accelerator == "gpu" and torch.cuda.is_available() else "cpu")
    access = Access(scheme=cipher.name, params=cipher.config(), image_size=setting.size, device=device)
    if setting.attack.threat == "CPA":
        chosen = iter(range(10**9))
        access.oracle = lambda x: cipher.encrypt(x, ids=[f"chosen/{next(chosen)}" for _ in range(len(x))]
                                                 if cipher.needs_ids else None)
    if setting.known is not None:
        known = setting.known.images
        access.known = (known, cipher.encrypt(known, ids=[f"known/{i}" for i in range(len(known))]
                                              if cipher.needs_ids else None))
    return access


def fit(cfg: DictConfig, trainer: L.Trainer, task: AttackTask, setting: Setting, resume: str | None) -> None:
    """A learned attack trains on the attacker's own images (checkpointed, resumable)."""
    images = setting.attacker.images
    batch = setting.attack.params.batch_size
    loader = DataLoader(TensorDataset(images), batch_size=batch, shuffle=True, drop_last=len(images) > batch,
                        generator=torch.Generator().manual_seed(cfg.seed))
    trainer.fit(task, train_dataloaders=loader, ckpt_path=resume)


def weighted_metrics(cfg: DictConfig) -> tuple[dict, dict]:
    """Metrics that need weights the user supplies: ({name: metric}, {name: why it is not computed})."""
    weights = (cfg.get("metrics") or {}).get("lpips_weights")
    if not weights:
        return {}, {"lpips": NOT_COMPUTED}
    return {"lpips": LPIPS(weights)}, {}


def observe(attack: Attack, cipher, victims: DataLoader) -> None:
    """An attack that pools evidence (shared_key) studies every victim ciphertext first."""
    for plain, index in victims:
        attack.observe(cipher.encrypt(plain, ids=victim_ids(index) if cipher.needs_ids else None))


def _attack(cfg: DictConfig, run_dir: Path, start: runs.Start, choices: dict | None) -> dict:
    cipher, digest = start.cipher, start.digest
    setting = prepare(cfg, cipher)
    extra, not_computed = weighted_metrics(cfg)  # a bad weights file fails before the run starts
    attack, victims, (h, w) = setting.attack, setting.victims, setting.size
    description = runs.describe(cfg, "attack", choices, cipher, setting.size, attack)
    resume = runs.begin(cfg, run_dir, cipher, setting.size)
    print(redacted_yaml(cfg))
    print(f"victim: {cipher!r}, {len(victims)} images {h}x{w}; attack {attack.name} ({attack.threat})"
          + (f"; attacker: {len(setting.attacker)} own images" if setting.attacker is not None else ""))
    attack.prepare(grant_access(cfg, setting, cipher))

    task = AttackTask(attack, cipher, grid_images=cfg.grid.images, extra_metrics=extra)
    loggers = runs.build_loggers(cfg, run_dir, description, job_type="attack")
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg["max_epochs"] = attack.params.epochs if attack.learned else 1
    trainer = runs.make_trainer(trainer_cfg, run_dir, loggers, checkpoints=attack.learned)
    victims_loader = DataLoader(TensorDataset(victims.images, torch.arange(len(victims))),
                                batch_size=cfg.victims.batch_size, shuffle=False)
    with runs.stops_cleanly(run_dir, {**description, **runs.run_fields(cfg), "config_digest": digest},
                            force=bool(cfg.get("force", False))):
        if attack.learned:
            fit(cfg, trainer, task, setting, resume)
        if attack.observes:
            observe(attack, cipher, victims_loader)
        trainer.test(task, dataloaders=victims_loader, verbose=False)  # reconstruct and score

    results = task.results
    if setting.holdout is not None:
        results.update(score_holdout(attack, cipher, setting.holdout))
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
        "known_images": 0 if setting.known is None else len(setting.known),
        "holdout_images": 0 if setting.holdout is None else len(setting.holdout),
        "attacker_images": None if setting.attacker is None else len(setting.attacker),
        "epochs": trainer.current_epoch if attack.learned else 0,
        "ssim": {"window": 11, "sigma": 1.5, "data_range": 255, "gray": "BT.601 luma"},
        "not_computed": not_computed,
        "duration_s": round(time.time() - start.time, 1),
    }
    if trainer.is_global_zero:
        write_outputs(run_dir, task, loggers)
    row = {k: metrics[k] for k in ("name", "scheme_config", "attack", "threat", "seed", "key_seed")}
    runs.close_loggers(loggers, results, run_dir, row={**row, **metrics["metrics"], "encrypted_ssim": results["baseline_ssim"]})
    return runs.finish(trainer, run_dir, metrics, summary)


def score_holdout(attack: Attack, victim, holdout: Images) -> dict[str, float]:
    """Decrypt the held-out images (encrypted by the victim, never shown to the attack) with the key
    the attack recovered, and score them as the victims are scored."""
    from .attacks.metrics import exact_bytes, ssim

    if attack.recovered_cipher() is None:
        raise InputError(f"attack {attack.name} recovers no key, so it has nothing to decrypt held-out images with")
    plain = holdout.images
    ids = [f"holdout/{i}" for i in range(len(plain))] if victim.needs_ids else None
    outcome = attack.reconstruct(victim.encrypt(plain, ids=ids))  # decrypted with the recovered key (or pool)
    decrypted = outcome.images
    return {"holdout_ssim": float(ssim(decrypted, plain).mean()),
            "holdout_ssim_up_to_global": float(ssim(attack.align(decrypted, victim, outcome.solution), plain).mean()),
            "holdout_exact_bytes": float(exact_bytes(decrypted, plain).mean())}


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
