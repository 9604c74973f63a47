"""SaveOnSignal at the edges of an epoch and of a run: a warning signal that arrives during an epoch's
last batch must not save a checkpoint between that batch and the epoch's validation (a run resumed
from there never validated that epoch: its best epoch could be lost); after a run, the process's
handler is the one it had before (a sweep runs its jobs in one process)."""

from __future__ import annotations

import os
import signal

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from leia.preemption import Interrupted, SaveOnSignal


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.validated: list[int] = []

    def training_step(self, batch, _):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, _):
        self.log("val", self.layer(batch[0]).mean())

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self.validated.append(self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class SignalAt(L.Callback):
    """Sends the signal to this process as batch `batch` of epoch `epoch` starts."""

    def __init__(self, epoch: int, batch: int):
        self.at = (epoch, batch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == self.at:
            os.kill(os.getpid(), signal.SIGUSR2)


def loader():
    return DataLoader(TensorDataset(torch.randn(16, 4)), batch_size=4)  # 4 batches an epoch


def fit(tmp_path, callbacks, ckpt=None):
    model = Tiny()
    trainer = L.Trainer(max_epochs=3, callbacks=callbacks, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        num_sanity_val_steps=0)
    try:
        trainer.fit(model, loader(), loader(), ckpt_path=ckpt)
    except Interrupted:
        pass
    return model, trainer


@pytest.mark.parametrize("batch", [1, 3], ids=["mid-epoch", "last-batch"])
def test_a_signal_saves_at_a_batch_boundary_and_the_resumed_run_validates_every_epoch(tmp_path, batch):
    before = signal.getsignal(signal.SIGUSR2)
    checkpoint = tmp_path / "last.ckpt"
    first, trainer = fit(tmp_path, [SaveOnSignal(checkpoint), SignalAt(1, batch)])
    assert checkpoint.is_file() and first.validated == ([0, 1] if batch == 3 else [0])
    assert trainer.global_step == 4 + batch + 1  # saved after the batch the signal arrived in
    second, _ = fit(tmp_path, [SaveOnSignal(tmp_path / "again.ckpt")], ckpt=str(checkpoint))
    assert first.validated + second.validated == [0, 1, 2]  # every epoch validated once, none skipped
    assert signal.getsignal(signal.SIGUSR2) == before  # after an interrupted run and after a finished one
