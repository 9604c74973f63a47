"""An exponential moving average of the weights whose horizon scales with the run.

Lightning's `WeightAveraging` keeps the average (parameters and BN statistics), swaps it in for
validation, saves it in checkpoints with the current weights beside it (so a resumed run continues
both), and copies it into the model when training ends, so the test loop measures it. This
subclass sets the decay from the run's length: a horizon of `horizon` of all optimizer steps
(decay = 1 - 1/(horizon·steps)), updated from `start` of the steps on; `trainer.max_epochs=1` is
then a whole short run, not the first epoch of a long one. Before its first update the average is
not swapped in, nor saved as the checkpoint's weights (it would be the untrained initial weights).
"""

from __future__ import annotations

from lightning.pytorch.callbacks import WeightAveraging


class ScaledEMA(WeightAveraging):
    def __init__(self, horizon: float, start: float = 0.0):
        super().__init__(avg_fn=self._average, use_buffers=True)
        self.horizon, self.start = horizon, start
        self.decay = 0.0
        self._first_step = 0

    def _average(self, averaged, current, num_averaged):
        return averaged + (current - averaged) * (1 - self.decay)

    def on_train_start(self, trainer, pl_module):
        if self._average_model is not None:  # made at setup, before the strategy moved the model to its device
            self._average_model.to(pl_module.device)
        steps = max(1, int(trainer.estimated_stepping_batches))
        self.decay = max(0.0, 1 - 1 / max(1.0, self.horizon * steps))
        self._first_step = int(self.start * steps)

    def should_update(self, step_idx=None, epoch_idx=None) -> bool:
        return step_idx is not None and step_idx >= self._first_step

    def _has_average(self) -> bool:
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def on_validation_epoch_start(self, trainer, pl_module):
        if self._has_average():
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer, pl_module):
        if self._has_average():
            super().on_validation_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        if self._has_average():
            super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        # Before its first update the average is the initial weights: a checkpoint then holds the
        # model's own weights (and resuming starts the average afresh, as an uninterrupted run does).
        if self._has_average():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)
