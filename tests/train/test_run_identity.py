"""A run's identity is its configuration plus its key fingerprint (`leia.runs`): a finished or
interrupted run is reused or resumed only for the same configuration and key, old run directories
are refused rather than reused under an unchecked key, one run at a time holds a directory, and
SIGTERM saves, records the run as interrupted and exits non-zero."""

import json
import signal
import subprocess
import sys
import time

import pytest

from leia import runs
from leia.errors import InputError
from tests.helpers import ROOT, run_train

SHORT = ["trainer.max_epochs=1", "data.train_limit=100", "trainer.enable_progress_bar=false", "logger=csv",
         "name=identity"]


def interrupted(run_dir):
    """What a run killed after its last checkpoint leaves: the checkpoint, no metrics.json."""
    (run_dir / "metrics.json").unlink()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_an_interrupted_run_resumes_only_its_own_configuration(tmp_path, capsys):
    _, run_dir = run_train(SHORT, tmp_path)
    interrupted(run_dir)
    with pytest.raises(InputError, match=r"checkpoint .*different configuration \(optimizer.lr: 0.1 -> 0.5\)"):
        run_train([*SHORT, "optimizer.lr=0.5"], tmp_path)
    with pytest.raises(InputError, match=r"different configuration \(key.seed: 0 -> 1\).*force=true.*name="):
        run_train([*SHORT, "key.seed=1"], tmp_path)
    capsys.readouterr()
    # more epochs (a RESUMABLE setting) continue the same run from its checkpoint
    done, _ = run_train([*SHORT, "trainer.max_epochs=2"], tmp_path)
    assert "resuming from" in capsys.readouterr().out and done["complete"] and done["epochs"] == 2
    # ... and so do they for a finished run; the same command then has nothing to do
    more, _ = run_train([*SHORT, "trainer.max_epochs=3"], tmp_path)
    assert "resuming from" in capsys.readouterr().out and more["epochs"] == 3
    assert run_train([*SHORT, "trainer.max_epochs=3"], tmp_path)[0] == more
    assert "nothing to do" in capsys.readouterr().out
    with pytest.raises(InputError, match="finished run of 3 epochs; trainer.max_epochs=2 is another run"):
        run_train([*SHORT, "trainer.max_epochs=2"], tmp_path)  # fewer epochs would overwrite it


def test_force_moves_the_old_checkpoint_and_result_aside(tmp_path):
    first, run_dir = run_train(SHORT, tmp_path)
    forced, _ = run_train([*SHORT, "force=true"], tmp_path)
    assert (run_dir / "checkpoints" / "last.before-force.ckpt").is_file()  # nothing resumes from the old run
    assert json.loads((run_dir / "metrics.before-force.json").read_text()) == first  # nothing is lost
    assert json.loads((run_dir / "metrics.json").read_text()) == forced


def test_a_cell_once_not_applicable_runs_again_when_its_configuration_changed(tmp_path, capsys):
    run_dir = tmp_path / "identity"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"complete": True, "status": "not_applicable", "config_digest": "old"}))
    done, _ = run_train(SHORT, tmp_path)
    assert done["status"] == "complete" and "running it again" in capsys.readouterr().out


def test_only_the_first_process_of_a_run_counts_as_rank_zero(monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    assert runs.is_rank_zero()
    monkeypatch.setenv("SLURM_PROCID", "0")  # an interactive SLURM shell ...
    assert runs.is_rank_zero()
    monkeypatch.setenv("LOCAL_RANK", "1")  # ... where Lightning started a second process
    assert not runs.is_rank_zero()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")  # the first process of the second node
    assert not runs.is_rank_zero()


def test_a_sweep_job_refused_by_a_busy_directory_records_nothing_there(tmp_path, monkeypatch):
    from leia import sweeps

    monkeypatch.setattr(sweeps, "in_sweep", lambda: True)
    run_dir = tmp_path / "cell"

    def job(cfg, run_dir, choices):
        with runs.claimed(run_dir):
            return {}

    with runs.claimed(run_dir):
        with pytest.raises(runs.DirectoryBusy):
            sweeps.run_job(job, None, run_dir, {}, task="train")
    assert not (run_dir / "metrics.json").exists()


def test_another_key_is_another_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LEIA_SECRET", "a1" * 16)
    first, run_dir = run_train([*SHORT, "key=env"], tmp_path)
    assert json.loads((run_dir / "run.json").read_text())["key_fingerprint"] == first["key_fingerprint"]
    assert run_train([*SHORT, "key=env"], tmp_path)[0] == first
    monkeypatch.setenv("LEIA_SECRET", "b2" * 16)
    with pytest.raises(InputError, match=f"finished run made with another key \\(key fingerprint {first['key_fingerprint']}"):
        run_train([*SHORT, "key=env"], tmp_path)
    interrupted(run_dir)
    with pytest.raises(InputError, match="checkpoint .* made with another key"):
        run_train([*SHORT, "key=env"], tmp_path)
    forced, _ = run_train([*SHORT, "key=env", "force=true"], tmp_path)
    assert forced["complete"] and forced["key_fingerprint"] != first["key_fingerprint"]
    text = "".join(p.read_text(errors="ignore") for p in run_dir.rglob("*.json"))
    assert "secret" not in text.replace('"secret_file"', "")  # fingerprints, never the secret


def test_run_directories_from_before_the_key_was_in_the_identity_are_refused(tmp_path):
    first, run_dir = run_train(SHORT, tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    del metrics["identity_version"]
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(InputError, match="before a run's identity included its key"):
        run_train(SHORT, tmp_path)
    interrupted(run_dir)
    (run_dir / "run.json").unlink()
    with pytest.raises(InputError, match="a configuration this leia did not record"):
        run_train(SHORT, tmp_path)


def test_a_second_run_into_a_busy_directory_is_refused(tmp_path):
    run_dir = tmp_path / "identity"
    with runs.claimed(run_dir):
        with pytest.raises(InputError, match=r"is in use by another run \(pid \d+"):
            run_train(SHORT, tmp_path)
    assert run_train(SHORT, tmp_path)[0]["complete"]  # released with the first


@pytest.mark.slow
def test_sigterm_saves_records_the_run_as_interrupted_and_exits_non_zero(tmp_path):
    args = [sys.executable, str(ROOT / "train.py"), "trainer.max_epochs=100", "data.train_limit=300",
            "checkpoint.every_n_steps=2", "trainer.enable_progress_bar=false", "logger=csv", "name=term",
            f"paths.runs={tmp_path}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (tmp_path / "term" / "checkpoints" / "last.ckpt").exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    record = json.loads((tmp_path / "term" / "metrics.json").read_text())
    assert record["status"] == "interrupted" and not record["complete"] and "SIGTERM" in record["reason"]
    assert "received SIGTERM: saved" in out
    resumed = subprocess.run([*args[:2], "trainer.max_epochs=1", *args[3:]], cwd=ROOT, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout
    assert json.loads((tmp_path / "term" / "metrics.json").read_text())["complete"]


def test_a_truncated_checkpoint_is_named_and_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    _, run_dir = run_train(SHORT, tmp_path)
    interrupted(run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:100])  # what a full disk used to leave
    with pytest.raises(InputError, match=f"{last} is empty, truncated or not a checkpoint.*force=true"):
        run_train(SHORT, tmp_path)

    import lightning.fabric.plugins.io.torch_io as torch_io

    path = tmp_path / "a.ckpt"
    runs.AtomicCheckpointIO().save_checkpoint({"step": 1}, path)
    before = path.read_bytes()

    def disk_full(checkpoint, target):
        open(target, "wb").write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch_io, "_atomic_save", disk_full)
    with pytest.raises(OSError, match="No space"):
        runs.AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.glob(".a.ckpt*")] == []


def test_wandb_credentials_without_a_route_log_offline_at_once(monkeypatch, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    runs._reachable.cache_clear()
    assert runs.wandb_mode() == "offline"
    assert "127.0.0.1:9 is unreachable" in capsys.readouterr().out
    assert runs.wandb_mode() == "offline" and capsys.readouterr().out == ""  # asked once per process
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setattr(runs.Path, "home", lambda: runs.Path("/nonexistent"))
    assert runs.wandb_mode() == "offline"  # no credentials: offline without asking the network


def test_runs_recorded_before_a_setting_existed_are_the_same_run_at_its_old_behaviour(tmp_path, capsys):
    """A finished run and a checkpoint recorded before `optimizer.label_smoothing` and the EMA
    settings existed are still this configuration's run while those settings keep their defaults."""
    first, run_dir = run_train(SHORT, tmp_path)

    def predate(record: dict) -> dict:
        config = record["config"]
        del config["optimizer"]["label_smoothing"], config["scheduler"]["ema"], config["scheduler"]["ema_start"]
        return {**record, "identity": "older", "config_digest": "older", "config": config}

    record = predate(json.loads((run_dir / "run.json").read_text()))
    (run_dir / "run.json").write_text(json.dumps(record))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, "config_digest": "older"}))
    assert run_train(SHORT, tmp_path)[0]["test"] == first["test"] and "nothing to do" in capsys.readouterr().out
    (run_dir / "run.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=r"optimizer.label_smoothing: \(unset\) -> 0.1"):
        run_train([*SHORT, "optimizer.label_smoothing=0.1"], tmp_path)
    interrupted(run_dir)
    assert run_train(SHORT, tmp_path)[0]["complete"] and "resuming from" in capsys.readouterr().out


def test_the_fast_recipes_later_options_at_their_defaults_change_no_recorded_run():
    """The fast recipe's runs recorded before alternating flips, cutout, identity init and the
    client's test-time views existed are the same runs while those stay off; turning one on is a change."""
    new = {"data": {"pad": 2, "alternate_flip": False, "cutout": 0, "client_tta": "none"},
           "model": {"options": {"widths": [64, 256, 256], "identity_init": False}}}
    old = {"data": {"pad": 2}, "model": {"options": {"widths": [64, 256, 256]}}}
    assert runs.changes(old, new) == []
    new["data"]["client_tta"] = "flip"
    assert runs.changes(old, new) == ["data.client_tta: (unset) -> flip"]


def test_a_data_directory_is_one_configuration_however_its_path_is_written(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from tests.helpers import compose_train

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    relative = compose_train(["data=imagefolder", "data.root=data/cifar10"], tmp_path / "runs")
    absolute = compose_train(["data=imagefolder", f"data.root={tmp_path / 'data' / 'cifar10'}"], tmp_path / "runs")
    other = compose_train(["data=imagefolder", "data.root=data"], tmp_path / "runs")
    digest = [runs.config_digest(OmegaConf.masked_copy(c, [k for k in c if k != "hydra"]))  # as a run sees it
              for c in (relative, absolute, other)]
    assert digest[0] == digest[1] != digest[2]
    # a run recorded with the path as written (before roots were resolved) is still this configuration's
    old = runs.computed(OmegaConf.masked_copy(relative, [k for k in relative if k != "hydra"]))
    old["data"]["root"] = "data/cifar10"
    assert runs.changes(old, runs.computed(OmegaConf.masked_copy(absolute, [k for k in absolute if k != "hydra"]))) == []
