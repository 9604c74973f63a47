"""End to end through Hydra: every registered attack runs through attack.py on small real data and
writes metrics.json, per_image.csv and grid.png; inapplicable schemes are refused; analytic attacks
need only test images; learned attacks resume from checkpoints; no key material reaches any file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leia import attacks
from leia.errors import InputError
from tests.attacks.helpers import cifar_folder
from tests.helpers import ATTACK_FAST, ROOT, run_attack

# (attack, scheme option, extra overrides): every registered attack at least once
RUNS = [
    ("tanaka_cpa", "tanaka", []), ("tanaka_cpa", "tanaka", ["attack.mode=bytes"]),
    ("tanaka_cpa", "tanaka", ["attack.mode=kpa"]), ("skk_cpa", "skk", []), ("skk_cpa", "skk_per_image", []),
    ("fr", "etc_gray", []), ("fr", "skk", ["attack.output=gray"]), ("skk_greedy", "skk_per_image", []),
    ("skk_greedy", "skk_per_image", ["attack.decoder=global", "attack.first_pixel=given"]),
    ("brute_force", "etc", ["attack.trial_seconds=0.1"]), ("jigsaw", "etc", []), ("jigsaw", "vit_block_cifar", []),
    ("shared_key", "etc", ["attack.holdout=10"]), ("shared_key", "etc_gray", []), ("shared_key", "ele", []), ("itn", "ele", ["attack.epochs=1"]), ("gan", "vit_block_cifar", ["attack.epochs=1"]),
    ("fr", "scramblemix", []), ("itn", "scramblemix", ["attack.epochs=1"]), ("gan", "scramblemix", ["attack.epochs=1"]),
    ("brute_force", "scramblemix", ["attack.trial_seconds=0.1"]), ("shared_key", "scramblemix", ["attack.holdout=10"]),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return cifar_folder(tmp_path_factory.mktemp("cifar"))


def attack_cli(args: list[str], runs: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "attack.py"), *args, f"paths.runs={runs}"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_the_runs_cover_every_registered_attack():
    assert {a for a, _, _ in RUNS} == set(attacks.names())


@pytest.mark.slow
@pytest.mark.parametrize("attack, scheme, extra", RUNS, ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_every_attack_runs_end_to_end(attack, scheme, extra, folder, tmp_path):
    victims = ["victims.limit=10"] if attack in ("jigsaw", "skk_greedy") else ["victims.limit=20"]
    metrics, run_dir = run_attack([f"scheme={scheme}", f"attack={attack}", "data=imagefolder", f"data.root={folder}",
                                   *victims, *extra, *ATTACK_FAST], tmp_path)
    assert metrics["complete"] and metrics["attack"] == attack and metrics["scheme_config"] == scheme
    assert metrics["threat"] in ("COA", "KPA", "CPA")
    for name in ("ssim", "ssim_gray", "psnr", "exact_bytes"):
        assert name in metrics["metrics"] and name in metrics["baseline_encrypted"]
    rows = (run_dir / "per_image.csv").read_text().splitlines()
    assert len(rows) == 1 + metrics["victim_images"]
    assert (run_dir / "grid.png").is_file()
    if attack in ("tanaka_cpa", "skk_cpa") and "mode=bytes" not in " ".join(extra) and scheme != "skk_per_image":
        assert metrics["metrics"]["exact_bytes"] == 1.0 and metrics["key"]["key_recovered_fraction"] == 1.0
    if attack == "jigsaw":
        assert {"direct_comparison", "neighbour_comparison"} <= set(metrics["metrics"])
    if attack == "brute_force":
        assert metrics["summary"]["calculation"] and metrics["summary"]["toy_true_key_fits"]


def test_attack_py_runs_the_default_photos_offline_and_prints_a_summary(tmp_path):
    done = attack_cli(["attack.first_pixel=given", *ATTACK_FAST], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "attacks").iterdir()
    assert run_dir.name == "photos-skk_per_image-skk_greedy-key0-seed0"
    assert "skk_greedy (COA) on skk: SSIM" in done.stdout


@pytest.mark.slow
def test_an_inapplicable_attack_is_refused_before_any_work(tmp_path):
    done = attack_cli(["scheme=etc", "attack=skk_cpa", *ATTACK_FAST], tmp_path)
    assert done.returncode != 0 and "attack 'skk_cpa' applies to scheme skk; not to 'etc'" in done.stderr
    assert not (tmp_path / "attacks" / "photos-etc-skk_cpa-key0-seed0" / "metrics.json").exists()


def test_analytic_attacks_need_only_test_images_and_learned_ones_say_what_is_missing(tmp_path):
    root = cifar_folder(tmp_path / "test-only", test_only=True)
    metrics, _ = run_attack(["scheme=tanaka", "attack=tanaka_cpa", "data=imagefolder", f"data.root={root}",
                             *ATTACK_FAST], tmp_path / "runs")
    assert metrics["metrics"]["exact_bytes"] == 1.0
    with pytest.raises(InputError, match="no train split"):
        run_attack(["scheme=tanaka", "attack=itn", "data=imagefolder", f"data.root={root}", *ATTACK_FAST],
                   tmp_path / "runs")


def test_a_finished_run_is_reused_only_for_the_same_configuration(folder, tmp_path):
    args = ["scheme=tanaka", "attack=tanaka_cpa", "data=imagefolder", f"data.root={folder}", "victims.limit=10",
            *ATTACK_FAST]
    first, _ = run_attack(args, tmp_path)
    again, _ = run_attack(args, tmp_path)
    assert again == first
    with pytest.raises(InputError, match="different configuration"):
        run_attack([*args, "attack.mode=bytes"], tmp_path)


@pytest.mark.slow
def test_a_learned_attack_resumes_from_its_last_checkpoint(folder, tmp_path):
    args = ["scheme=tanaka", "attack=itn", "attack.epochs=1", "data=imagefolder", f"data.root={folder}", *ATTACK_FAST]
    first, run_dir = run_attack(args, tmp_path)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    (run_dir / "metrics.json").unlink()  # as if the job died after its last checkpoint
    again, _ = run_attack(args, tmp_path)
    assert again["metrics"] == first["metrics"]  # the restored generator, not a new one


@pytest.mark.slow
def test_no_secret_or_key_material_reaches_any_file_an_attack_run_writes(folder, tmp_path):
    secret = "0a" * 20
    done = attack_cli(["scheme=tanaka", "attack=tanaka_cpa", "key=env", "data=imagefolder", f"data.root={folder}",
                       "victims.limit=10", "trainer.enable_progress_bar=false"], tmp_path, env={"LEIA_SECRET": secret,
                                                                                                "WANDB_MODE": "offline"})
    assert done.returncode == 0, done.stderr[-3000:]
    from leia import ciphers

    key = ciphers.create("tanaka", secret=secret).components(4, 4)["P"]
    needles = [secret.encode(), bytes(key.astype("uint8").tolist()), json.dumps(key.tolist()).encode()]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files)
    for path in files:
        data = path.read_bytes()
        assert not any(n in data for n in needles), path
    assert secret not in done.stdout + done.stderr
