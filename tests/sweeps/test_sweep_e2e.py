"""Hydra multiruns end to end: cells that do not apply, failing jobs, resuming a sweep, W&B runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import CONF, wandb_run
from tests.sweeps.conftest import cli


def records(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}


def cell(jobs: dict[str, dict], *values: str) -> dict:
    """The one job whose directory (its overrides, e.g. attack=fr,key.seed=1,scheme=skk,...) has these values."""
    (match,) = [record for name, record in jobs.items() if set(values) <= set(name.split(","))]
    return match


@pytest.mark.slow
def test_an_attack_that_does_not_apply_is_recorded_not_a_crash(attack_sweep):
    sweep_dir, done, _ = attack_sweep
    jobs = records(sweep_dir)
    assert len(jobs) == 8  # one directory per cell of the grid, named by its swept values
    assert cell(jobs, "attack=fr", "key.seed=1", "scheme=tanaka")["name"] == "photos-tanaka-fr-key1-seed0"
    for name, record in jobs.items():
        assert record["sweep"] == "grid" and record["key_seed"] in (0, 1)
        if "attack=skk_cpa" in name and "scheme=tanaka" in name:
            assert record["status"] == "not_applicable" and record["complete"]
            assert "applies to scheme skk" in record["reason"]
            assert not (sweep_dir / name / "wandb").exists()  # refused before any work
        else:
            assert record["status"] == "complete" and 0 <= record["metrics"]["ssim"] <= 1
    assert done.stdout.count("not applicable") == 2


@pytest.mark.slow
def test_every_job_logs_one_finished_wandb_run_in_the_sweeps_group(attack_sweep):
    sweep_dir, _, _ = attack_sweep
    ids = set()
    for name, record in records(sweep_dir).items():
        if record["status"] != "complete":
            continue
        run = wandb_run(sweep_dir / name)  # exactly one run file per job
        assert run["run"]["group"] == "grid" and run["run"]["job_type"] == "attack"
        assert run["run"]["name"] == record["name"]
        assert run["exit_code"] == 0  # the job finished its run
        # the result table, the per-image table and the image grid (W&B media: <key>/_type, ...)
        assert {"results/_type", "attack/per_image/_type", "attack/plain_encrypted_reconstruction/_type"} <= run["history"]
        assert "test/ssim" in run["summary"] and "final/ssim" in run["history"]
        ids.add(run["run"]["id"])
    assert len(ids) == 6  # no two jobs in one run


@pytest.mark.slow
def test_training_jobs_log_as_job_type_train(train_sweep):
    runs = [wandb_run(p.parent) for p in train_sweep.glob("*/metrics.json")]
    assert len(runs) == 4 and len({r["run"]["id"] for r in runs}) == 4
    for run in runs:
        assert run["run"]["group"] == "train_grid" and run["run"]["job_type"] == "train" and run["exit_code"] == 0
        assert {"results/_type", "samples/plain_top_encrypted_bottom/_type", "final/acc1", "val/acc1"} <= run["history"]


@pytest.mark.slow
def test_launcher_local_runs_each_job_in_its_own_process(tmp_path):
    done = cli("attack.py", ["-m", "launcher=local", "sweep=local", "scheme=skk", "attack=fr,skk_cpa", "victims.limit=2",
                             "logger=csv"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = records(tmp_path / "sweeps" / "local")
    assert sorted(r["attack"] for r in jobs.values()) == ["fr", "skk_cpa"]
    assert all(r["status"] == "complete" for r in jobs.values())
    assert len(list((tmp_path / "sweeps" / "local" / ".submitit").glob("*/*_log.out"))) == 2  # submitit's job logs


@pytest.mark.slow
def test_rerunning_a_named_sweep_skips_its_complete_jobs(attack_sweep):
    sweep_dir, _, args = attack_sweep
    before = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/metrics.json")}
    again = cli("attack.py", args, sweep_dir.parent.parent)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("nothing to do") == 8
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/metrics.json")} == before
    assert len(list(sweep_dir.glob("*/wandb/offline-run-*"))) == 6  # no new W&B runs


@pytest.mark.slow
def test_a_failing_job_is_recorded_and_the_others_still_run(tmp_path):
    # jigsaw refuses 1,024-piece puzzles (128×128 photos, 4×4 blocks): a real error, after fr has been queued
    done = cli("attack.py", ["-m", "sweep=mixed", "scheme=etc", "attack=jigsaw,fr", "victims.limit=2", "logger=csv"],
               tmp_path)
    assert done.returncode != 0  # Hydra reports the failure after running every job
    jobs = records(tmp_path / "sweeps" / "mixed")
    failed, ok = cell(jobs, "attack=jigsaw"), cell(jobs, "attack=fr")
    assert failed["status"] == "failed" and not failed["complete"]
    assert "compatibility table" in failed["error"] and "InputError" in failed["error"]
    assert "jigsaw" in failed["traceback"]
    assert ok["status"] == "complete"
    again = cli("attack.py", ["-m", "sweep=mixed", "scheme=etc", "attack=jigsaw,fr", "victims.limit=2", "logger=csv"],
                tmp_path)
    assert again.returncode != 0 and again.stdout.count("nothing to do") == 1  # fr skipped, jigsaw tried again


# ---------------------------------------------------------------- the job wrapper, in process
def _sweep_job(tmp_path: Path):
    """A composed attack config inside a (pretend) multirun, as Hydra hands it to a job."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("attack", overrides=["hydra.mode=MULTIRUN", "sweep=unit", f"paths.runs={tmp_path}"],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def test_a_job_that_fails_mid_run_finishes_its_wandb_run_before_the_next_job(tmp_path, monkeypatch):
    import wandb

    from leia import sweeps

    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg, choices = _sweep_job(tmp_path)

    def crashes(cfg, run_dir, choices):
        wandb.init(project="leia", dir=str(run_dir), group="unit", job_type="attack")
        wandb.log({"progress": 1.0})
        raise RuntimeError("out of memory at step 3")

    run_dir = tmp_path / "job"
    run_dir.mkdir()
    with pytest.raises(RuntimeError, match="out of memory"):
        sweeps.run_job(crashes, cfg, run_dir, choices, task="attack")
    assert wandb.run is None  # the next job in this process starts its own run
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and record["error"] == "RuntimeError: out of memory at step 3"
    assert record["scheme_config"] == "skk_per_image" and record["attack"] == "skk_greedy"
    assert wandb_run(run_dir)["exit_code"] == 1


def test_a_failure_never_replaces_a_finished_runs_metrics(tmp_path):
    from leia import sweeps

    cfg, choices = _sweep_job(tmp_path)
    finished = {"complete": True, "status": "complete", "task": "attack", "config_digest": "other"}
    (tmp_path / "metrics.json").write_text(json.dumps(finished))

    def refuses(cfg, run_dir, choices):
        raise ValueError("holds a finished run of a different configuration")

    with pytest.raises(ValueError):
        sweeps.run_job(refuses, cfg, tmp_path, choices, task="attack")
    assert json.loads((tmp_path / "metrics.json").read_text()) == finished
    assert json.loads((tmp_path / "failed.json").read_text())["status"] == "failed"


def test_outside_a_sweep_a_refusal_is_its_message_and_exit_status_1_unrecorded(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from leia import sweeps
    from leia.attacks.base import NotApplicable

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("attack", overrides=[f"paths.runs={tmp_path}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    assert not sweeps.in_sweep()

    def not_applicable(cfg, run_dir, choices):
        raise NotApplicable("attack 'x' applies to scheme y")

    with pytest.raises(SystemExit, match=r"^\S+: error: attack 'x' applies to scheme y$"):
        sweeps.run_job(not_applicable, cfg, tmp_path, {}, task="attack")
    assert not (tmp_path / "metrics.json").exists()

    def crashes(cfg, run_dir, choices):
        raise RuntimeError("a bug, not a refusal")

    with pytest.raises(RuntimeError, match="a bug"):  # other errors keep their traceback
        sweeps.run_job(crashes, cfg, tmp_path, {}, task="attack")
