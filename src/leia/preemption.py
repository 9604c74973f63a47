"""Preemption and time limits: save a checkpoint when the cluster warns, so that the requeued job
loses nothing.

SLURM sends a warning signal before it stops a job: submitit asks for USR2 `signal_delay_s` before
the time limit (`#SBATCH --signal=USR2@...`), and preemption sends it too. `SaveOnSignal` catches it,
saves `checkpoints/last.ckpt` at the next batch boundary, or after the validation when the signal
comes in an epoch's last batch (all processes together under DDP; the stateful train loader records
its place in the epoch), then hands the signal to the handler that
was there before: submitit's requeues the job, and the requeued job resumes from that checkpoint
(the run directory and command are the same). Without a previous handler (a run started by hand,
`kill -USR2 <pid>`), the run stops after saving; the same command resumes it. SIGTERM (`kill`,
`scancel` without a signal) saves too, through Lightning's own SIGTERM handling (`on_exception`);
either way `runs.stops_cleanly` records the run as interrupted and exits non-zero.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import lightning as L


class Interrupted(SystemExit):
    """A run stopped by a signal after saving its checkpoint (`runs.stops_cleanly` records it)."""

    def __init__(self, signum: int, checkpoint: Path):
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signal_name} after saving {checkpoint}; run the same command to resume")


class SaveOnSignal(L.Callback):
    def __init__(self, checkpoint: Path, signum: int = signal.SIGUSR2):
        self.checkpoint, self.signum = Path(checkpoint), signum
        self._previous = None
        self._pending = None

    def on_train_start(self, trainer, pl_module) -> None:
        # Not in `setup`: Lightning records every signal handler after `setup` and `on_fit_start` and
        # puts them back when fit ends, which re-installed this one over the handler it replaced (in a
        # sweep's next job, the previous job's handler: a signal then saved and did not stop the run).
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(self.signum)
            signal.signal(self.signum, self._note)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(self.signum, self._previous)
            self._previous = None

    def _note(self, signum, frame) -> None:
        # A signal can arrive in the middle of an optimizer step: only note it here.
        print(f"received {signal.Signals(signum).name}: saving {self.checkpoint} at the end of this batch (or of "
              "this epoch's validation)", flush=True)
        self._pending = (signum, frame)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch's last batch: on_train_epoch_end saves, after the epoch's validation
        self._save_if_signalled(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # (a checkpoint between the last batch and the validation resumed without that validation)
        self._save_if_signalled(trainer)

    def _save_if_signalled(self, trainer) -> None:
        pending = self._pending is not None
        if trainer.world_size > 1:  # every process saves together, or none does
            pending = trainer.strategy.reduce_boolean_decision(pending, all=False)
        if not pending:
            return
        signum, frame = self._pending or (self.signum, None)
        trainer.save_checkpoint(str(self.checkpoint))
        print(f"saved {self.checkpoint} at epoch {trainer.current_epoch}, step {trainer.global_step}", flush=True)
        previous = self._previous
        self._restore()
        self._pending = None
        if callable(previous):
            previous(signum, frame)  # submitit: requeue this job and exit (on the first process)
        else:
            raise Interrupted(signum, self.checkpoint)

    def on_exception(self, trainer, pl_module, exception) -> None:
        """Lightning stops fit on SIGTERM (on every process together, at a batch boundary) by
        raising SIGTERMException: save first, so that the same command resumes."""
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit":
            trainer.save_checkpoint(str(self.checkpoint))
            print(f"received SIGTERM: saved {self.checkpoint} at epoch {trainer.current_epoch}, step "
                  f"{trainer.global_step}", flush=True)
