"""bench/tables.py, the one way bench/ makes a table: a named sweep with overrides, then leia.report
over that budget's cells. A real sweep on the offline photos, two settings of one grid."""

from __future__ import annotations

import sys

import pytest

from leia.report import build
from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import tables  # noqa: E402


@pytest.mark.slow
def test_a_table_runs_named_sweeps_and_reports_each_setting_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    grid = ["scheme=skk", "attack=skk_cpa,fr", "key.seed=0", "victims.limit=2", "grid.images=2",
            "scheme.color_shuffle=false"]  # a value Hydra writes otherwise in a cell's name (False)
    small, large = grid + ["data.size=32"], grid + ["data.size=64"]
    dirs = tables.run_sweeps("attack.py", [("attack/sweep_photos", small), ("attack/sweep_photos", large)],
                             tmp_path, ROOT)
    assert dirs == [tmp_path / "sweeps" / "attack_photos"]  # the named sweep's own directory
    small_cells = tables.cells("attack/sweep_photos", small, tmp_path)
    assert sorted(c.name for c in small_cells) == [
        "attack=fr,data.size=32,grid.images=2,key.seed=0,scheme.color_shuffle=False,scheme=skk,victims.limit=2",
        "attack=skk_cpa,data.size=32,grid.images=2,key.seed=0,scheme.color_shuffle=False,scheme=skk,victims.limit=2"]
    assert tables.cells("attack/sweep_photos", small[:-1] + ["data.size=32,64"], tmp_path) == sorted(
        small_cells + tables.cells("attack/sweep_photos", large, tmp_path))
    assert tables.cells("attack/sweep_photos", grid, tmp_path) == []  # data.size names the cells: another setting
    md = build(dirs, tmp_path / "report")["written"]["markdown"].read_text()
    # both sizes in one report: each (scheme, attack) is split by the size, never averaged
    assert "| skk | skk_cpa | size=32x32 | CPA | 1 | 1.000 |" in md
    assert "| skk | skk_cpa | size=64x64 | CPA | 1 | 1.000 |" in md
    assert md.count("| skk | fr | size=") == 2
    # a second run of the same table skips every finished cell
    _, ok = tables.run_sweep("attack.py", "attack/sweep_photos", small, tmp_path, ROOT)
    assert ok and (dirs[0] / "bench.log").read_text().count("is complete; nothing to do") == 2


def test_the_madono_table_checks_the_papers_ordering_strictly_and_names_its_budget():
    from types import SimpleNamespace

    import reproduce_madono as madono
    from leia.report import Cell

    def training(*accs):
        return {("cifar10", s): {"resnet20": Cell([a], ["complete"])} for s, a in zip(madono.ORDER, accs)}

    assert madono.ordering(training(0.65, 0.53, 0.47, 0.32), "resnet20")[1:] == (True, pytest.approx(12.0))
    assert not madono.ordering(training(0.10, 0.10, 0.10, 0.10), "resnet20")[1]  # chance ties are no ordering
    assert madono.ordering(training(0.65, 0.53), "resnet20")[2] is None  # unfinished rows: no verdict
    args = SimpleNamespace(sweep="sweep/madono2020_cifar10", trainer="cpu", epochs=10, model="resnet20", workers=1,
                           train_images=10_000, test_images=0, seeds=None)
    assert madono.overrides(args) == ["trainer=cpu", "trainer.max_epochs=10", "model=resnet20", "data.num_workers=1",
                                      "data.train_limit=10000"]
    assert madono.marks(args)[0] == "<!-- bench/reproduce_madono.py:cpu:start -->"  # the committed section's
