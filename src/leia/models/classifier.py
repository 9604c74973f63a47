"""The classifier LightningModule: adapter -> backbone, trained on encrypted images.

Metrics (torchmetrics): top-1 and top-5 accuracy on train, val (the test set, every epoch, so the
best accuracy over epochs is reported as the papers do) and test; with `data.eval_plain`, the test
loop also measures the same model on plain test images (`test_plain/*`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import lightning as L
import torch
import torchmetrics
from torch import nn

from ..errors import InputError
from ..registry import Registry


OPTIMIZERS: Registry = Registry("optimizer")  # name -> (parameters, OptimConfig) -> optimizer
SCHEDULES: Registry = Registry("scheduler")  # name -> (optimizer, ScheduleConfig, max_epochs, steps) -> scheduler or None


def _check_name(group: str, name: str, registry: Registry) -> None:
    if name not in registry:  # at config time, before any training
        raise InputError(f"{group}.name must be one of {', '.join(registry.names())}, got {name!r}")


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    label_smoothing: float = 0.0  # of the cross-entropy the optimizer minimises
    # normalisation layers' parameters (BN biases, and scales where they train) learn this many times
    # faster, with their decay per step (lr x weight_decay) kept equal to the other weights' (airbench)
    norm_lr_scale: float = 1.0

    def __post_init__(self):
        _check_name("optimizer", self.name, OPTIMIZERS)
        if self.norm_lr_scale <= 0:
            raise InputError(f"optimizer.norm_lr_scale must be > 0, got {self.norm_lr_scale}")


@dataclass
class ScheduleConfig:
    name: str = "multistep"  # multistep | cosine | linear | none
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])  # fractions of max_epochs (or epochs if > 1)
    gamma: float = 0.1
    warmup_epochs: int = 0
    # linear (per step): warm up over this fraction of all steps, then decay linearly to final_lr·lr
    warmup_fraction: float = 0.2
    final_lr: float = 0.0
    # an exponential moving average of the weights (validated and tested with it): its horizon as a
    # fraction of all steps (0: none), from `ema_start` (a fraction of all steps) on
    ema: float = 0.0
    ema_start: float = 0.0

    def __post_init__(self):
        _check_name("scheduler", self.name, SCHEDULES)
        for name in ("warmup_fraction", "final_lr", "ema", "ema_start"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"scheduler.{name} is a fraction in [0, 1], got {getattr(self, name)}")


@OPTIMIZERS.register("sgd")
def _sgd(params, o: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0,
                           weight_decay=o.weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(params, o: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


# Schedules step once per epoch unless marked per_step; a per-step schedule gets `steps`, the
# optimizer steps of the whole run (others get 0), so that it scales with trainer.max_epochs.
@SCHEDULES.register("none")
def _constant(opt, s: ScheduleConfig, max_epochs: int, steps: int):
    return None


@SCHEDULES.register("multistep")
def _multistep(opt, s: ScheduleConfig, max_epochs: int, steps: int):
    milestones = [round(m * max_epochs) if m <= 1 else int(m) for m in s.milestones]
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=s.gamma)


@SCHEDULES.register("cosine")
def _cosine(opt, s: ScheduleConfig, max_epochs: int, steps: int):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs - s.warmup_epochs))


@SCHEDULES.register("linear")
def _linear(opt, s: ScheduleConfig, max_epochs: int, steps: int):
    """Per step: linear warm-up from 0 over warmup_fraction of the run, then linear decay to final_lr."""
    warm = max(1, round(s.warmup_fraction * steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 1 - (1 - s.final_lr) * min(1.0, (step - warm) / max(1, steps - warm))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


_linear.per_step = True


def _metrics(num_classes: int) -> torchmetrics.MetricCollection:
    metrics = {"acc1": torchmetrics.classification.MulticlassAccuracy(num_classes, top_k=1, average="micro")}
    if num_classes >= 5:
        metrics["acc5"] = torchmetrics.classification.MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return torchmetrics.MetricCollection(metrics)


def _mean_log_posterior(logp: torch.Tensor) -> torch.Tensor:
    """log of the mean over views (dim 1) of exp(logp), in log space: finite where a class's
    posterior underflows in every view."""
    return logp.logsumexp(1) - math.log(logp.shape[1])


def average_views(view_logits: torch.Tensor) -> torch.Tensor:
    """Logits [B, V, K] -> the log of the mean posterior over the V views [B, K]."""
    return _mean_log_posterior(view_logits.log_softmax(-1))


def view_consistency(view_logits: torch.Tensor) -> torch.Tensor:
    """ScrambleMix's self-teaching term for logits [B, D, K] of D views per image: the mean over
    images and views of KL(p_d ‖ p̄), p̄ the views' mean posterior, with p̄ a fixed teacher (stop-gradient,
    as the paper's slides have it; the reference code lets gradients flow through p̄ too)."""
    logp = view_logits.log_softmax(-1)
    teacher = _mean_log_posterior(logp).unsqueeze(1).detach()  # log p̄, finite (a log of 0 would make 0·inf)
    return (logp.exp() * (logp - teacher)).sum(-1).mean()


class EncryptedClassifier(L.LightningModule):
    def __init__(self, backbone: nn.Module, adapter: nn.Module, num_classes: int, optim: OptimConfig,
                 schedule: ScheduleConfig, max_epochs: int, description: dict | None = None, kl_weight: float = 0.0):
        super().__init__()
        self.kl_weight = kl_weight  # multi-view schemes (scramblemix): weight of the views' self-teaching term
        self.model = nn.Sequential()
        self.model.add_module("adapter", adapter)
        self.model.add_module("backbone", backbone)
        self.optim, self.schedule, self.max_epochs = optim, schedule, max_epochs
        # Only a description of the run (no key material, never the cipher) goes into checkpoints.
        self.save_hyperparameters({"run": description or {}, "num_classes": num_classes})
        self.criterion = nn.CrossEntropyLoss(label_smoothing=optim.label_smoothing)
        self.train_metrics = _metrics(num_classes).clone(prefix="train/")
        self.val_metrics = _metrics(num_classes).clone(prefix="val/")
        self.test_metrics = nn.ModuleList([_metrics(num_classes).clone(prefix="test/"),
                                           _metrics(num_classes).clone(prefix="test_plain/"),
                                           _metrics(num_classes).clone(prefix="test_one_view/")])
        self.val_best = torchmetrics.MaxMetric()
        self.val_best.persistent(True)  # checkpointed, so a resumed run remembers its best epoch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def fit_to_data(self, sample) -> None:
        """Fit what a backbone fits to its training inputs (a whitening stem) before training, on
        `sample()` (called only then); a resumed run then restores the fitted weights from its
        checkpoint."""
        backbone, adapter = self.model.backbone, self.model.adapter
        if getattr(backbone, "fits_to_data", False):
            if any(True for _ in adapter.parameters()):
                raise InputError("this backbone's stem is fitted to its inputs, which an untrained adapter would "
                                 "make meaningless; use adapter=none or model.options.stem=learned")
            backbone.fit(sample())

    def view_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, V, K] of a batch of views [B, V, C, H, W] (one forward pass over all of them)."""
        b, v = x.shape[:2]
        return self(x.flatten(0, 1)).unflatten(0, (b, v))

    def eval_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, K]. A batch of test views [B, T, C, H, W] (scramblemix's test-time averaging, a
        client-side step) gives the log of the mean posterior over the views, as the paper's slides
        average posteriors (the reference code averages logits)."""
        if x.dim() == 4:
            return self(x)
        return average_views(self.view_logits(x))

    def training_step(self, batch, batch_idx):
        x, labels = batch["image"], batch["label"]
        if x.dim() == 4:
            logits = self(x)
            loss = self.criterion(logits, labels)
        else:  # D views per image: cross-entropy on every view, plus the self-teaching term
            views = self.view_logits(x)
            logits, labels = views.flatten(0, 1), labels.repeat_interleave(views.shape[1])
            loss = self.criterion(logits, labels)
            kl = view_consistency(views)
            self.log("train/kl", kl, batch_size=len(views))
            loss = loss + self.kl_weight * kl
        self.train_metrics.update(logits, labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def on_train_epoch_end(self):
        self.log_dict(self.train_metrics.compute(), sync_dist=True)  # torchmetrics already synced: silences the DDP warning
        self.train_metrics.reset()

    def validation_step(self, batch, batch_idx):
        logits = self.eval_logits(batch["image"])
        self.log("val/loss", self.criterion(logits, batch["label"]), batch_size=len(logits), sync_dist=True)
        self.val_metrics.update(logits, batch["label"])

    def on_validation_epoch_end(self):
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values, prog_bar=True)
        if not self.trainer.sanity_checking:
            self.val_best.update(values["val/acc1"])
            self.log("val/acc1_best", self.val_best.compute())

    def on_test_epoch_start(self):
        self._tested: set[int] = set()

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        x = batch["image"]
        if x.dim() == 5 and x.shape[1] > 1:  # test-time averaging: view 0 alone is scored too
            views = self.view_logits(x)
            self.test_metrics[2].update(views[:, 0], batch["label"])
            self._tested.add(2)
            logits = average_views(views)
        else:
            logits = self.eval_logits(x)
        self.test_metrics[dataloader_idx].update(logits, batch["label"])
        self._tested.add(dataloader_idx)

    def on_test_epoch_end(self):
        # 0: encrypted test images; 1: plain ones; 2: view 0 alone when test views are averaged
        for idx in sorted(self._tested):
            self.log_dict(self.test_metrics[idx].compute(), add_dataloader_idx=False)
            self.test_metrics[idx].reset()

    def param_groups(self) -> list[dict]:
        """All parameters in one group (as checkpoints before norm_lr_scale stored them), or, when
        `optimizer.norm_lr_scale` differs from 1, the trained ones with normalisation layers' apart."""
        k = self.optim.norm_lr_scale
        if k == 1:
            return [{"params": list(self.parameters())}]
        trained = [(m, p) for m in self.modules() for p in m.parameters(recurse=False) if p.requires_grad]
        norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
        groups = [{"params": [p for m, p in trained if not isinstance(m, norms)]},
                  {"params": [p for m, p in trained if isinstance(m, norms)], "lr": self.optim.lr * k,
                   "weight_decay": self.optim.weight_decay / k}]
        return [g for g in groups if g["params"]]

    def configure_optimizers(self):
        opt = OPTIMIZERS.get(self.optim.name)(self.param_groups(), self.optim)
        s = self.schedule
        make = SCHEDULES.get(s.name)
        per_step = getattr(make, "per_step", False)
        steps = int(self.trainer.estimated_stepping_batches) if per_step and self._trainer is not None else 0
        sched = make(opt, s, self.max_epochs, steps)
        if sched is None:
            return opt
        if per_step:
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if s.warmup_epochs:
            warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=s.warmup_epochs)
            sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, sched], milestones=[s.warmup_epochs])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
