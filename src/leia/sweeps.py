"""Jobs of a Hydra multirun (a sweep, `python attack.py -m ...`): what each job leaves behind, so
that a grid survives its odd cells and its interruptions.

- Every job writes metrics.json with a `status`: `complete`, `interrupted` (SIGTERM or USR2; the
  same command resumes it: `runs.stops_cleanly`), `not_applicable` (an attack that does
  not apply to the job's scheme: recorded with the reason, and the job succeeds) or `failed` (the
  error and the last lines of its traceback; the job's W&B run is finished as failed and the error
  re-raised, so Hydra still runs the other jobs and exits non-zero at the end).
- A sweep's directory is named after `sweep` (the launch time unless a sweep config or the command
  names it): re-running a named sweep lands in the same job directories, and jobs whose
  metrics.json is complete are skipped (failed ones run again).
- Outside a sweep, a refusal (any leia error: a bad setting, a run of another configuration or key,
  an attack that does not apply) ends the run with its message as the first line and exit status
  1; other errors are raised as they are.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from .errors import LeiaError, NotApplicable
from .records import redact, write_metrics
from .runs import (FAILED, METRICS, DirectoryBusy, config_digest, describe, finish_wandb, in_sweep, is_rank_zero,
                   run_fields)


def identity(cfg: DictConfig, choices: dict, task: str) -> dict:
    """What a report needs to place a job in its tables, read from the config alone (no cipher is
    built: this also describes jobs that failed before building one)."""
    return {**describe(cfg, task, choices), **run_fields(cfg)}


def run_job(run: Callable, cfg: DictConfig, run_dir: str | Path, choices: dict, task: str) -> dict:
    """Run one job (`training.run` or `attacking.run`); inside a sweep, record what stops it."""
    if not in_sweep():
        try:
            return run(cfg, run_dir, choices=choices)
        except LeiaError as e:  # a refusal: leia's message, first line, no traceback; exit status 1
            raise SystemExit(f"{cfg.name}: error: {e}") from None
    run_dir = Path(run_dir)
    try:
        return run(cfg, run_dir, choices=choices)
    except DirectoryBusy:
        raise  # the running run owns that directory: record nothing there
    except NotApplicable as e:
        if not is_rank_zero():
            raise
        record = {**identity(cfg, choices, task), "status": "not_applicable", "complete": True,
                  "config_digest": config_digest(cfg), "reason": str(e)}
        run_dir.mkdir(parents=True, exist_ok=True)
        write_metrics(run_dir / METRICS, record)
        print(f"{cfg.name}: not applicable ({e}); recorded in {run_dir / METRICS}")
        return record
    except Exception as e:
        finish_wandb(failed=True)
        if not is_rank_zero():  # one record per job, from its first process
            raise
        lines = traceback.format_exception(e)
        record = {**identity(cfg, choices, task), "status": "failed", "complete": False,
                  "config_digest": config_digest(cfg), "error": redact(f"{type(e).__name__}: {e}"),
                  "traceback": redact("".join(lines[-6:]))}
        run_dir.mkdir(parents=True, exist_ok=True)
        # Never over a finished run (e.g. one of another configuration): that result stays.
        finished = (run_dir / METRICS).is_file() and json.loads((run_dir / METRICS).read_text()).get("complete")
        write_metrics(run_dir / (FAILED if finished else METRICS), record)
        print(f"{cfg.name}: FAILED ({type(e).__name__}: {e}); recorded in {run_dir / (FAILED if finished else METRICS)}")
        raise
