"""End to end through Hydra: every scheme, option and experiment runs (fast_dev_run on the embedded
data); bad configs fail before training; runs resume exactly; no key material reaches any file."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from leia import ciphers
from leia.errors import InputError
from tests.helpers import CONF, FAST, ROOT, compose_train, run_train
from tests.train.test_data import image_folder

SCHEME_OPTIONS = sorted(p.stem for p in (CONF / "scheme").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def train_cli(args: list[str], runs: Path, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args, f"paths.runs={runs}"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, **kwargs)


@pytest.mark.parametrize("scheme", [pytest.param(s, marks=() if s == "tanaka" else pytest.mark.slow)
                                    for s in SCHEME_OPTIONS])  # tanaka: the fast tier's train.py run
def test_every_scheme_trains_end_to_end_through_train_py(scheme, tmp_path):
    done = train_cli([f"scheme={scheme}", *FAST], tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["complete"] and metrics["scheme_config"] == scheme and 0 <= metrics["test"]["acc1"] <= 1
    assert metrics["key_fingerprint"] == ciphers.from_config(
        compose_train([f"scheme={scheme}"], tmp_path).scheme, {"seed": 0}).fingerprint_for(tuple(metrics["image_size"]))
    assert (run_dir / "samples.png").is_file() and "test top-1" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["model=resnet18"], ["model=vit_tiny"], ["model=convmixer", "model.options.dim=64", "model.options.depth=2"],
    ["model=timm", "model.options.model_name=resnet18"],
    ["scheme=vit_block_cifar", "model=vit_tiny"], ["scheme=vit_block_cifar", "model=convmixer", "model.options.dim=32"],
    ["adapter=tanaka"], ["adapter=tanaka", "scheme=plain"], ["adapter=tanaka", "scheme=etc_gray"],
    ["adapter=pixel", "scheme=skk"], ["optimizer=adamw", "scheduler=cosine", "scheduler.warmup_epochs=1"],
    ["scheduler=none"], ["data.placement=device", "scheme=skk_per_image"], ["data.eval_plain=true"],
])
def test_every_option_trains_end_to_end(overrides, tmp_path):
    metrics, _ = run_train([*overrides, *FAST], tmp_path)
    assert metrics["complete"]
    if "data.eval_plain=true" in overrides:
        assert set(metrics["test_plain"]) == {"acc1", "acc5"}


@pytest.mark.slow
def test_image_folder_and_cifar_configs_train_on_local_folders(tmp_path):
    root = image_folder(tmp_path / "folder", classes=tuple("abcdefghij"), n=3, size=32)
    for data in ("imagefolder", "cifar10", "cifar100"):
        extra = [] if data == "imagefolder" else ["data.format=imagefolder"]
        metrics, _ = run_train([f"data={data}", f"data.root={root}", "data.num_workers=0", *extra, *FAST], tmp_path / data)
        assert metrics["data"] == data and metrics["num_classes"] == 10


def test_trainer_and_logger_options_compose(tmp_path):
    for option in ("cpu", "gpu"):
        assert compose_train([f"trainer={option}"], tmp_path).trainer.accelerator == option
    assert compose_train(["logger=csv"], tmp_path).logger.name == "csv"


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_through_train_py(experiment, tmp_path):
    done = train_cli([f"experiment={experiment}", "data=digits", "trainer=cpu", *FAST], tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (metrics_file,) = tmp_path.glob("*/metrics.json")
    assert json.loads(metrics_file.read_text())["complete"]


@pytest.mark.parametrize("overrides,message", [
    (["scheme.block_size=5"], "not divisible by the block size 5"),
    (["scheme=vit_block", "scheme.block_size=12", "model=vit_tiny"], "not divisible by the block size 12"),
    (["scheme=vit_block_cifar", "model=vit_tiny", "model.options.patch_size=8"], "patch size must be 4, not 8"),
    (["scheme=vit_block", "model=convmixer", "model.options.patch_size=4"], "patch size must be 16, not 4"),
    (["adapter=pixel"], "adapter 'pixel' does not apply to scheme 'tanaka'"),
    (["model.backbone=resnet1000"], "unknown backbone 'resnet1000'"),
    (["data.placement=gpu"], "data.placement must be one of dataset, device"),
    (["+data.batchsize=3"], "unknown data setting"),
    (["optimizer.name=lion"], "optimizer.name must be one of adamw, sgd, got 'lion'"),
])
def test_bad_configs_fail_before_training_starts(overrides, message, tmp_path):
    with pytest.raises((InputError, ValueError), match=message):
        run_train([*overrides, *FAST], tmp_path)
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("metrics.json"))


@pytest.mark.slow
def test_unknown_group_options_are_refused_by_hydra(tmp_path):
    done = train_cli(["scheme=skkk"], tmp_path)
    assert done.returncode != 0 and "skkk" in done.stderr and "Available options" in done.stderr


def test_complete_runs_are_skipped_and_force_trains_again_from_scratch(tmp_path, capsys):
    short = ["trainer.max_epochs=1", "data.train_limit=100", "trainer.enable_progress_bar=false", "logger=csv"]
    first, run_dir = run_train(short, tmp_path)
    assert "test top-1" in capsys.readouterr().out
    again, _ = run_train(short, tmp_path)
    out = capsys.readouterr().out
    assert again == first and "is complete; nothing to do" in out and "resuming" not in out
    forced, _ = run_train([*short, "force=true"], tmp_path)
    out = capsys.readouterr().out
    assert forced["complete"] and "resuming" not in out and "is complete" not in out


RESUME = ["trainer.max_epochs=3", "data.train_limit=500", "trainer.deterministic=true", "checkpoint.every_n_steps=3",
          "trainer.enable_progress_bar=false", "logger=csv", "scheme=skk_per_image", "seed=1"]


def _checkpoint_step(path: Path) -> int | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)["global_step"]
    except Exception:  # being written
        return None


# the fast recipe's parts that hold state: the resident loader, the per-step schedule, the EMA
FAST_RECIPE = ["model=fastnet", "model.options.widths=[16,32,32]", "scheduler=linear", "scheduler.ema=0.3",
               "scheduler.ema_start=0.2", "data.placement=resident", "data.pad=2", "optimizer.label_smoothing=0.2"]


@pytest.mark.slow
# (the fast recipe's per-step schedule builds the train loader before Lightning restores its loops:
# a resumed epoch restarted at its first batch until the data module kept the loader's position)
# (and a checkpoint written at an epoch's end once made the resumed run skip the next epoch whole)
@pytest.mark.parametrize("recipe,cut", [([], "mid-epoch"), (FAST_RECIPE, "mid-epoch"), ([], "epoch-end")],
                         ids=["resnet20-dataset", "fastnet-resident-ema", "resnet20-dataset-epoch-end"])
def test_a_run_killed_mid_epoch_resumes_to_the_same_result(recipe, cut, tmp_path):
    RESUME = [*globals()["RESUME"], *recipe, *(["checkpoint.every_n_steps=4"] if cut == "epoch-end" else [])]

    def cut_here(step: int) -> bool:  # a checkpoint of epoch 2 or 3: mid-epoch, or its epoch's last batch
        return step > 8 and step % 8 != 0 if cut == "mid-epoch" else step in (8, 16)

    whole = train_cli(RESUME, tmp_path / "whole", timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    # 500 images / batch 64 = 8 steps per epoch; checkpoints every 3 steps. Kill the second run at a
    # mid-epoch checkpoint of epoch 2 or 3, then run the same command again.
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *RESUME, f"paths.runs={tmp_path / 'cut'}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        ckpts = list((tmp_path / "cut").glob("*/checkpoints/last.ckpt"))
        step = _checkpoint_step(ckpts[0]) if ckpts else None
        if step is not None and cut_here(step):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            last = step
            break
        time.sleep(0.05)
    assert last is not None, f"the run finished before a {cut} checkpoint could be interrupted"
    (cut_dir,) = (tmp_path / "cut").iterdir()
    assert not (cut_dir / "metrics.json").exists()
    resumed = train_cli(RESUME, tmp_path / "cut", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout
    (whole_dir,) = (tmp_path / "whole").iterdir()
    a = torch.load(whole_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(cut_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 24
    for state in ("state_dict", "current_model_state"):  # the EMA's average, and the weights it averages
        for name, tensor in a.get(state, {}).items():
            assert torch.equal(tensor, b[state][name]), name
    assert ("current_model_state" in a) == bool(recipe)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (whole_dir, cut_dir))
    assert ma["test"] == mb["test"] and ma["best_val_acc1"] == mb["best_val_acc1"]
    # nothing is lost: the interrupted attempt's metric log is kept beside the resumed one's
    assert sorted(p.parent.name for p in (cut_dir / "csv").glob("version_*/metrics.csv")) == ["version_0", "version_1"]


@pytest.mark.slow
def test_no_key_material_in_any_file_a_run_writes(tmp_path):
    secret = ciphers.write_secret_file(tmp_path / "owner.secret")
    secret_text = secret.read_text().strip()
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "LEIA_SECRET": secret_text}
    runs = tmp_path / "runs"
    done = train_cli(["scheme=tanaka", "key=env", "logger=wandb", "trainer.max_epochs=1", "data.train_limit=200",
                      "trainer.enable_progress_bar=false"], runs, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    cipher = ciphers.create("tanaka", secret=secret_text)
    p = cipher.components(32, 32)["P"]
    needles = {
        "secret hex": secret_text.encode(),
        "secret bytes": bytes.fromhex(secret_text),
        "P as int64": p.astype("<i8").tobytes(),
        "P as uint8": p.astype("u1").tobytes(),
        "P as text": ", ".join(map(str, p[:12].tolist())).encode(),
        "P as json": ",".join(map(str, p[:12].tolist())).encode(),
    }
    files = [f for f in runs.rglob("*") if f.is_file()]
    assert any(f.suffix == ".wandb" for f in files) and any(f.suffix == ".ckpt" for f in files)
    for f in files:
        data = f.read_bytes()
        for what, needle in needles.items():
            assert needle not in data, f"{what} found in {f.relative_to(runs)}"
    assert secret_text not in done.stdout + done.stderr
    assert cipher.fingerprint in (next(runs.glob("*/metrics.json"))).read_text()
    assert "W&B ran offline; sync with: wandb sync" in done.stdout  # printed even with WANDB_SILENT


@pytest.mark.slow
def test_converted_plain_vit_matches_the_plain_models_accuracy_on_encrypted_images(tmp_path):
    common = ["model=vit_tiny", "trainer.enable_progress_bar=false", "logger=csv", "data.train_limit=300"]
    plain, plain_dir = run_train(["scheme=plain", "trainer.max_epochs=1", "name=plain-vit", *common], tmp_path)
    converted, _ = run_train(["scheme=vit_block_cifar", "scheme.np=true", "name=converted-vit",
                              f"convert.checkpoint={plain_dir / 'checkpoints' / 'last.ckpt'}", *common], tmp_path)
    assert converted["task"] == "convert" and converted["scheme"] == "vit_block"
    assert converted["test"] == plain["test"]  # identical accuracy: same predictions on every image
    with pytest.raises(InputError, match="use adapter=none"):
        run_train(["scheme=vit_block_cifar", "adapter=tanaka", "name=x",
                   f"convert.checkpoint={plain_dir / 'checkpoints' / 'last.ckpt'}", *common], tmp_path)


@pytest.mark.slow
def test_a_secret_on_the_command_line_is_refused_before_hydra_writes_it(tmp_path):
    # every syntax is covered in-process (tests/test_records.py); here, that the entry point refuses
    # before Hydra writes anything, for a field name, a dict value and a near name
    for override in ("+key.secret=hunter2", "+key={secret:hunter2}", "+key.passphrase=hunter2"):
        done = train_cli([override, "logger=csv"], tmp_path)
        assert done.returncode != 0 and "refusing the command-line override" in done.stderr
    done = train_cli(["+key.note=hunter2"], tmp_path, env={"LEIA_SECRET": "hunter2"})
    assert done.returncode != 0 and "refusing" in done.stderr
    assert not [f for f in tmp_path.rglob("*") if f.is_file() and b"hunter2" in f.read_bytes()]


def test_a_finished_training_run_is_reused_only_for_the_same_configuration(tmp_path):
    first, run_dir = run_train(FAST, tmp_path)
    assert json.loads((run_dir / "metrics.json").read_text())["config_digest"] == first["config_digest"]
    assert run_train(FAST, tmp_path)[0] == first
    with pytest.raises(InputError, match="different configuration"):
        run_train([*FAST, "optimizer.lr=0.5"], tmp_path)
