"""python -m leia.report on real sweeps: the tables hold the jobs' own numbers."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from leia.errors import InputError
from leia.report import Cell, build
from tests.helpers import ROOT, wandb_run
from tests.sweeps.test_sweep_e2e import cell, records


def report_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "leia.report", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def report(attack_sweep, train_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    done = report_cli(attack_sweep[0], train_sweep, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


@pytest.mark.slow
def test_attack_cells_are_mean_and_std_over_keys_with_not_applicable_cells(report, attack_sweep):
    out, _ = report
    jobs = records(attack_sweep[0])
    cells = {(r["scheme"], r["attack"]): r for r in rows(out / "attacks.csv")}
    fr_skk = [cell(jobs, "attack=fr", f"key.seed={k}", "scheme=skk")["metrics"]["ssim"] for k in (0, 1)]
    assert float(cells["skk", "fr"]["ssim_mean"]) == pytest.approx(statistics.fmean(fr_skk))
    assert float(cells["skk", "fr"]["ssim_std"]) == pytest.approx(statistics.stdev(fr_skk))
    assert cells["skk", "fr"]["n"] == "2"
    assert float(cells["skk", "skk_cpa"]["ssim_mean"]) == 1.0  # the CPA is exact
    assert cells["tanaka", "skk_cpa"]["n"] == "0" and cells["tanaka", "skk_cpa"]["not_applicable"] == "2"
    md = (out / "report.md").read_text()
    assert "| scheme \\ attack | fr | skk_cpa |" in md
    tanaka_row = next(line for line in md.splitlines() if line.startswith("| tanaka |") and "n/a" in line)
    assert tanaka_row.endswith("| n/a |")


@pytest.mark.slow
def test_training_cells_and_privacy_utility(report, train_sweep):
    out, _ = report
    accs = [json.loads(p.read_text())["test"]["acc1"] for p in train_sweep.glob("*scheme=skk*/metrics.json")]
    cell = next(r for r in rows(out / "training.csv") if r["scheme"] == "skk")
    assert cell["model"] == "resnet20" and cell["n"] == "2"
    assert float(cell["acc1_mean"]) == pytest.approx(statistics.fmean(accs))
    md = (out / "report.md").read_text()
    # attacks ran on the photos, training on the digits: never joined into one privacy-utility row
    assert "## Privacy-utility" in md and "never joins two data sets" in md and not (out / "privacy_utility.png").exists()
    for png in ("grids/skk-photos.png", "grids/tanaka-photos.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(rows(out / "runs.csv")) == 8 + 4


def _job(root: Path, cell: str, **fields) -> None:
    (root / cell).mkdir(parents=True)
    (root / cell / "metrics.json").write_text(json.dumps({"status": "complete", "complete": True, "seed": 0,
                                                          "key_seed": 0, "name": cell, **fields}))


def test_privacy_utility_joins_one_data_set_and_takes_the_strongest_attack_up_to_symmetry(tmp_path):
    """etc on CIFAR-10: jigsaw's raw SSIM is higher, but shared_key's reconstruction is exact up to a
    mirror, so shared_key is the verdict; the digits' training run is not joined with CIFAR-10."""
    sweep = tmp_path / "sweep"
    attack = {"task": "attack", "scheme": "etc", "scheme_config": "etc", "data": "cifar10"}
    _job(sweep, "a1", **attack, attack="jigsaw", metrics={"ssim": 0.30})
    _job(sweep, "a2", **attack, attack="shared_key", metrics={"ssim": 0.27, "ssim_up_to_global": 1.0})
    train = {"task": "train", "scheme": "etc", "scheme_config": "etc", "model": "resnet20", "adapter": "none"}
    _job(sweep, "t1", **train, data="cifar10", test={"acc1": 0.5})
    _job(sweep, "t2", **train, data="digits", test={"acc1": 0.9})
    result = build([sweep], tmp_path / "out", setting="ResNet-20, 3 epochs")
    [row] = result["privacy_utility"]
    assert "Setting: ResNet-20, 3 epochs" in result["written"]["markdown"].read_text()
    assert result["written"]["privacy_utility"].read_bytes()[:4] == b"\x89PNG"
    assert (row["best_attack"], row["attack_ssim"], row["acc1"], row["train_data"]) == ("shared_key", 1.0, 0.5, "cifar10")
    assert "| etc | cifar10 | resnet20 | 50.00% | shared_key | 1.000 |" in result["written"]["markdown"].read_text()


def test_failed_cells_and_their_errors_are_reported(tmp_path):
    job = tmp_path / "sweep" / "attack=jigsaw,scheme=etc"
    job.mkdir(parents=True)
    (job / "metrics.json").write_text(json.dumps({
        "task": "attack", "status": "failed", "complete": False, "name": "photos-etc-jigsaw-key0-seed0",
        "scheme": "etc", "scheme_config": "etc", "attack": "jigsaw", "data": "photos", "seed": 0, "key_seed": 0,
        "error": "InputError: jigsaw: 1024 pieces ... limit"}))
    result = build([tmp_path / "sweep"], tmp_path / "out")
    md = result["written"]["markdown"].read_text()
    assert "| etc | failed |" in md and "## Failed jobs" in md and "1024 pieces" in md


def test_cell_text():
    assert Cell([0.5, 0.7], ["complete"] * 2).text(3) == "0.600 ± 0.141 (2)"
    assert Cell([0.5], ["complete", "failed"]).text(2) == "0.50 ± 0.00 (1), 1 failed"
    assert Cell([], ["not_applicable"]).text(2) == "n/a"
    assert Cell([], ["failed", "not_applicable"]).text(2) == "failed"
    assert Cell([], ["interrupted"]).text(2) == "interrupted"
    assert Cell([0.5], ["complete", "interrupted"]).text(2) == "0.50 ± 0.00 (1), 1 interrupted"


@pytest.mark.slow
def test_a_missing_sweep_directory_is_a_clear_error(tmp_path):
    done = report_cli(tmp_path / "nowhere")
    assert done.returncode == 2 and "no sweep directory at" in done.stderr
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "metrics.json").write_text('{"task": "train", "status": ')  # a job killed mid-write
    done = report_cli(tmp_path)
    assert done.returncode == 2 and f"{tmp_path / 'job' / 'metrics.json'} is not readable JSON" in done.stderr


@pytest.mark.slow
def test_the_report_is_logged_to_wandb_offline(attack_sweep, tmp_path):
    import os

    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("WANDB_API_KEY", None)
    done = report_cli(attack_sweep[0], "--out", tmp_path, "--wandb", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    run = wandb_run(tmp_path)
    assert run["run"]["job_type"] == "report" and run["run"]["group"] == "grid" and run["exit_code"] == 0
    assert {"attacks/_type", "runs/_type", "figures/skk (photos)/_type"} <= run["history"]


def test_the_training_table_beside_a_paper_has_both_gaps_to_plain(tmp_path):
    sweep = tmp_path / "sweep"
    for i, (scheme, adapter, acc) in enumerate([("plain", "none", 0.92), ("plain", "none", 0.90),
                                                ("tanaka", "none", 0.89), ("tanaka", "tanaka", 0.85),
                                                ("etc", "none", 0.80)]):
        _job(sweep, f"t{i}", task="train", scheme=scheme, scheme_config=scheme, model="fastnet", adapter=adapter,
             data="cifar10", test={"acc1": acc})
    md = build([sweep], tmp_path / "out", paper="madono2020")["written"]["markdown"].read_text()
    assert "## Beside the paper" in md and "Table 3" in md
    assert "| tanaka | fastnet | 89.00 ± 0.00 (1) | 2.00 | 94.94 | 1.76 |" in md  # plain 91.00 mean
    assert "| tanaka | fastnet+tanaka | 85.00 ± 0.00 (1) | — | 94.49 | 1.15 |" in md  # no plain+tanaka run here
    assert "| etc | fastnet | 80.00 ± 0.00 (1) | 11.00 | — | — |" in md  # the paper's EtC is etc_legacy
    with pytest.raises(InputError, match="unknown paper 'nope'; published tables: madono2020, madono2023"):
        build([sweep], tmp_path / "out2", paper="nope")


def test_a_test_time_averaging_run_also_gives_its_one_view_row(tmp_path):
    sweep = tmp_path / "sweep"
    _job(sweep, "s", task="train", scheme="scramblemix", scheme_config="scramblemix_tta", model="fastnet",
         adapter="none", data="cifar10", test={"acc1": 0.61}, test_one_view={"acc1": 0.58})
    _job(sweep, "t", task="train", scheme="tanaka", scheme_config="tanaka", model="fastnet", adapter="none",
         data="cifar10", test={"acc1": 0.55})
    md = build([sweep], tmp_path / "out", paper="madono2023")["written"]["markdown"].read_text()
    assert "| scramblemix_tta | fastnet | 61.00 ± 0.00 (1) | — | 95.31 | — |" in md
    assert "| scramblemix_tta/one_view | fastnet | 58.00 ± 0.00 (1) | — | 95.02 | — |" in md
    assert ": 2 jobs (2 complete)" in md  # one run, two rows: not counted twice


def test_runs_of_one_attack_in_different_settings_are_different_cells(tmp_path):
    """A CPA's nibble and byte modes must never be averaged: the report splits a scheme's attack runs
    by the parameters in which they differ, averages over keys only, and lists each setting in full."""
    sweep = tmp_path / "sweep"
    tanaka = {"task": "attack", "scheme": "tanaka", "scheme_config": "tanaka", "data": "cifar10", "attack": "tanaka_cpa",
              "threat": "CPA", "scheme_params": {"block_size": 4}, "image_size": [32, 32], "victim_images": 100,
              "baseline_encrypted": {"ssim": 0.02}}
    for k, (mode, ssim, key) in enumerate([("nibbles", 1.0, 1.0), ("nibbles", 1.0, 1.0), ("bytes", 0.02, 0.1),
                                           ("bytes", 0.04, 0.2)]):
        _job(sweep, f"t{k}", **tanaka, key_seed=k % 2, attack_params={"mode": mode, "known_images": 4},
             metrics={"ssim": ssim, "ssim_gray": ssim, "psnr": 10.0 + k, "exact_bytes": ssim}, key={"key_recovered_fraction": key})
    _job(sweep, "f", task="attack", scheme="skk", scheme_config="skk", data="cifar10", attack="fr", threat="COA",
         attack_params={}, scheme_params={"color_shuffle": True}, metrics={"ssim": 0.25, "fold_identity": 0.37},
         baseline_encrypted={"ssim": 0.03})
    result = build([sweep], tmp_path / "out")
    cells = {(r["scheme"], r["attack"]): r for r in rows(result["written"]["attacks_csv"])}
    assert set(cells) == {("tanaka", "tanaka_cpa[mode=nibbles]"), ("tanaka", "tanaka_cpa[mode=bytes]"), ("skk", "fr")}
    assert float(cells["tanaka", "tanaka_cpa[mode=bytes]"]["ssim_mean"]) == pytest.approx(0.03)
    assert cells["tanaka", "tanaka_cpa[mode=bytes]"]["n"] == "2"
    assert float(cells["tanaka", "tanaka_cpa[mode=nibbles]"]["ssim_mean"]) == 1.0
    md = result["written"]["markdown"].read_text()
    assert "| tanaka | tanaka_cpa | mode=bytes | CPA | 2 | 0.030 | 0.030 | 12.50 | 3.0 | 15.0 | 0.020 |  |" in md
    assert "| tanaka | tanaka_cpa | mode=nibbles | CPA | 2 | 1.000 | 1.000 | 10.50 | 100.0 | 100.0 | 0.020 |  |" in md
    assert "| skk | fr |  | COA | 1 | 0.250 | – | – | – | – | 0.030 | fold identity % 37.0 |" in md
    assert {r["setting"] for r in rows(result["written"]["runs_csv"])} == {"mode=nibbles", "mode=bytes", ""}
    # a run interrupted before it counted its victims is still a run of its setting, not a new one
    (sweep / "t3" / "metrics.json").write_text(json.dumps({**json.loads((sweep / "t3" / "metrics.json").read_text()),
                                                           "status": "interrupted", "victim_images": None}))
    result = build([sweep], tmp_path / "out2")
    cells = {(r["scheme"], r["attack"]): r for r in rows(result["written"]["attacks_csv"])}
    assert set(cells) == {("tanaka", "tanaka_cpa[mode=nibbles]"), ("tanaka", "tanaka_cpa[mode=bytes]"), ("skk", "fr")}
    assert cells["tanaka", "tanaka_cpa[mode=bytes]"]["n"] == "1"


def test_training_runs_of_different_budgets_are_different_cells_and_meet_plain_in_theirs(tmp_path):
    sweep = tmp_path / "sweep"
    for i, (scheme, epochs, acc) in enumerate([("plain", 1, 0.68), ("plain", 10, 0.88), ("tanaka", 10, 0.85)]):
        _job(sweep, f"t{i}", task="train", scheme=scheme, scheme_config=scheme, model="fastnet", adapter="none",
             data="cifar10", test={"acc1": acc}, epochs=epochs, train_images=50000, test_images=10000)
    result = build([sweep], tmp_path / "out", paper="madono2020")
    cells = {(r["scheme"], r["model"]): float(r["acc1_mean"]) for r in rows(result["written"]["training_csv"])}
    assert cells == {("plain", "fastnet [epochs=1]"): 0.68, ("plain", "fastnet [epochs=10]"): 0.88,
                     ("tanaka", "fastnet [epochs=10]"): 0.85}
    md = result["written"]["markdown"].read_text()
    assert "| tanaka | fastnet [epochs=10] | 85.00 ± 0.00 (1) | 3.00 | 94.94 | 1.76 |" in md


def test_a_client_tta_run_is_always_labelled_and_never_averaged_with_one_view_runs(tmp_path):
    """A test averaged over the client's flipped views is its own, labelled cell, also in a sweep of
    such runs alone (where nothing else varies), and a failed flip job stays in its cell."""
    budget = dict(task="train", scheme="plain", scheme_config="plain", model="fastnet", adapter="none",
                  data="cifar10", epochs=30, train_images=50000, test_images=10000)
    only = tmp_path / "only"
    _job(only, "tta", **budget, test={"acc1": 0.913}, test_one_view={"acc1": 0.906}, client_tta="flip")
    md = build([only], tmp_path / "out1")["written"]["markdown"].read_text()
    assert "| fastnet [client_tta=flip] |\n|---|---|\n| plain | 91.30 ± 0.00 (1) |" in md  # the model column's head
    mixed = tmp_path / "mixed"
    _job(mixed, "one", **budget, test={"acc1": 0.907})
    _job(mixed, "tta", **budget, test={"acc1": 0.913}, test_one_view={"acc1": 0.906}, client_tta="flip")
    _job(mixed, "ten", **{**budget, "epochs": 10}, test={"acc1": 0.88})
    _job(mixed, "failed", task="train", status="failed", complete=False, scheme="plain", scheme_config="plain",
         model="fastnet", adapter="none", data="cifar10", client_tta="flip", error="InputError: ...")
    result = build([mixed], tmp_path / "out2")
    cells = {(r["scheme"], r["model"]): (float(r["acc1_mean"]) if r["acc1_mean"] else None)
             for r in rows(result["written"]["training_csv"])}
    assert cells == {("plain", "fastnet [epochs=30]"): 0.907, ("plain", "fastnet [epochs=10]"): 0.88,
                     ("plain", "fastnet [epochs=30, client_tta=flip]"): 0.913,
                     ("plain/one_view", "fastnet [epochs=30, client_tta=flip]"): 0.906,
                     ("plain", "fastnet [client_tta=flip]"): None}  # the failed job: no budget recorded
    assert {r["name"]: r["client_tta"] for r in rows(result["written"]["runs_csv"])} == {
        "one": "", "tta": "flip", "ten": "", "failed": "flip"}
