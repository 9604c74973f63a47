"""The attack as a Lightning task: the evaluator's side of an attack run (`leia.attacking`).

`AttackTask` runs an attack against the victim's ciphertexts and scores every reconstruction
against its plain image (SSIM, grayscale SSIM, PSNR, exact bytes; `metrics`), beside the same
scores of the encrypted image itself (`baseline_*`). Learned attacks train in `training_step` on the
attacker's own images, with manual optimisation: the attack owns its optimisers (a GAN has two).
`write_outputs` leaves per_image.csv and grid.png (plain | encrypted | reconstruction rows) in the
run directory, and logs both to W&B.
"""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import torch
from torchmetrics import MeanMetric

from .base import Attack, cipher_view
from .metrics import image_metrics


def victim_ids(indices) -> list[str]:
    return [f"victim/{int(i)}" for i in indices]


class AttackTask(L.LightningModule):
    """Runs an attack against the victim's ciphertexts and scores it. Learned attacks (nn.Modules)
    are trained by `training_step` on the attacker's own images (manual optimisation: the attack
    owns its optimisers, e.g. a GAN's two)."""

    def __init__(self, attack: Attack, victim, grid_images: int = 8, extra_metrics: dict | None = None):
        super().__init__()
        self.extra_metrics = extra_metrics or {}  # name -> (pred, target) -> per-image values (LPIPS)
        self.attack = attack  # registered as a submodule when it is an nn.Module (learned attacks)
        self._victim = victim  # not a module, never in a state_dict
        self.grid_images = grid_images
        self.automatic_optimization = False
        self.means = torch.nn.ModuleDict()  # name -> MeanMetric, made on first use (moves with the task)
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
            self.means[name] = MeanMetric().to(values.device)  # its state is not saved in checkpoints
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
        per_image = {**image_metrics(recon, plain, self.extra_metrics),
                     **{f"baseline_{k}": v for k, v in image_metrics(encrypted, plain, self.extra_metrics).items()},
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


def write_outputs(run_dir: Path, task: AttackTask, loggers: list) -> None:
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
