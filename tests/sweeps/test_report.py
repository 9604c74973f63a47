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
