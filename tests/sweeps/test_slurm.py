"""launcher=slurm on a real SLURM cluster (scripts/slurm_local_cluster.sh start; CI starts one and sets
LEIA_REQUIRE_SLURM=1, so that a missing cluster fails there instead of skipping)."""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT
from tests.sweeps.conftest import cli
from tests.sweeps.test_sweep_e2e import cell, records

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def slurm_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return done.returncode == 0 and any(s.startswith(("idle", "mixed", "alloc")) for s in done.stdout.split())


@pytest.fixture(scope="module", autouse=True)
def slurm():
    if not slurm_up():
        if os.environ.get("LEIA_REQUIRE_SLURM"):
            pytest.fail("LEIA_REQUIRE_SLURM is set but no SLURM cluster answers (scripts/slurm_local_cluster.sh start)")
        pytest.skip("no SLURM cluster here: start one with scripts/slurm_local_cluster.sh start (needs root)")


SLURM = ["launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=20"]


def test_a_two_job_sweep_runs_through_sbatch(tmp_path):
    done = cli("attack.py", ["-m", "sweep=slurm_grid", *SLURM, "scheme=skk", "attack=fr,skk_cpa", "victims.limit=2",
                             "logger=csv"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "slurm_grid"
    jobs = records(sweep)
    assert len(jobs) == 2 and not any("launcher" in name for name in jobs)  # where it ran does not name a cell
    for attack in ("fr", "skk_cpa"):
        record = cell(jobs, f"attack={attack}")
        assert record["status"] == "complete" and record["sweep"] == "slurm_grid"
    (script,) = sweep.glob(".submitit/*/*_submission.sh")  # one sbatch job array
    text = script.read_text()
    assert "#SBATCH --array=0-1%2" in text and "#SBATCH --signal=USR2@120" in text
    assert "#SBATCH --cpus-per-task=1" in text and "#SBATCH --open-mode=append" in text
    logs = sorted(sweep.glob(".submitit/*_*/*_0_log.out"))
    assert len(logs) == 2 and all("Results:" in p.read_text() for p in logs)


def _job_state(job: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    return dict(part.split("=", 1) for part in out.split() if "=" in part)


def test_a_preempted_training_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
    args = ["-m", "sweep=preempt", *SLURM, "logger=csv", "trainer.max_epochs=3", "data.train_limit=512",
            "checkpoint.every_n_steps=2", "trainer.enable_progress_bar=false"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, f"paths.runs={tmp_path}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sweep = tmp_path / "sweeps" / "preempt"
    try:
        deadline = time.time() + 300
        while not list(sweep.glob("*/checkpoints/last.ckpt")):  # the job is training
            assert time.time() < deadline and proc.poll() is None, "the job never wrote a checkpoint"
            time.sleep(1)
        # submitit's folder per SLURM job: <job id>, or <array id>_<task> for arrays
        (job,) = [p.name for p in sweep.glob(".submitit/*") if re.fullmatch(r"\d+(_\d+)?", p.name)]
        subprocess.run(["scancel", "--signal=USR2", job], check=True)  # what SLURM sends before preempting
        deadline = time.time() + 120
        while _job_state(job).get("Restarts", "0") == "0":
            assert time.time() < deadline, f"job {job} was not requeued: {_job_state(job)}"
            time.sleep(1)
        # SLURM holds a requeued job (BeginTime) until the killed instance's credential has expired
        # (cred_expire, about 2 minutes). Starting it sooner (scontrol update starttime=now) raced
        # slurmd's revocation of that credential under load: "Killing non-startable batch JobId=39:
        # Job credential revoked", and the job never ran again. So the test waits, as a cluster does.
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run(["scancel", "--name=train"], capture_output=True)
    assert proc.returncode == 0, out[-3000:]
    (metrics,) = sweep.glob("*/metrics.json")
    record = json.loads(metrics.read_text())
    assert record["status"] == "complete" and record["epochs"] == 3
    log = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))
    assert "received SIGUSR2" in log and "saved " in log and "Requeued job" in log
    assert f"resuming from {metrics.parent / 'checkpoints' / 'last.ckpt'}" in log


def test_ddp_under_slurm_takes_its_processes_from_the_job(tmp_path):
    # two SLURM tasks on one node; Lightning reads SLURM_NTASKS_PER_NODE and SLURM_PROCID instead of starting processes
    done = cli("train.py", ["-m", "sweep=ddp", *SLURM, "hydra.launcher.tasks_per_node=2", "trainer=ddp_cpu", "logger=csv",
                            "trainer.max_epochs=1", "data.train_limit=256", "data.test_limit=100",
                            "trainer.enable_progress_bar=false"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "ddp"
    (metrics,) = sweep.glob("*/metrics.json")
    record = json.loads(metrics.read_text())
    assert record["status"] == "complete" and record["test_images"] == 100
    log = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log
