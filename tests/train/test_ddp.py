"""Data-parallel training: sharded epochs, the global batch split per process, and real 2-process
DDP on CPU (gloo) through train.py."""

from __future__ import annotations

import json
import types

import pytest
import torch

from leia import ciphers
from leia.data.datamodule import DataConfig, EncryptedDataModule
from leia.data.loading import Augment, EpochSampler
from leia.errors import InputError
from tests.train.test_train_e2e import train_cli


def test_processes_see_disjoint_parts_of_the_same_epoch():
    full = list(EpochSampler(10, seed=3, shuffle=True, augment=Augment()))
    shards = [list(EpochSampler(10, seed=3, shuffle=True, augment=Augment(), rank=r, world=4)) for r in range(4)]
    assert all(len(s) == 3 for s in shards)  # padded to 12: every process runs the same number of steps
    interleaved = [shards[k % 4][k // 4] for k in range(12)]
    assert interleaved[:10] == full and interleaved[10:] == full[:2]  # the same order and augmentation, wrapped
    evals = [list(EpochSampler(10, seed=3, shuffle=False, augment=None, rank=r, world=4, pad=False)) for r in range(4)]
    assert sorted(i for s in evals for i, *_ in s) == list(range(10))  # evaluation: every image exactly once


def test_a_resumed_process_skips_what_it_had_done():
    sampler = EpochSampler(20, seed=0, shuffle=True, augment=None, rank=1, world=2)
    whole = list(sampler)
    sampler.skip(4)
    assert list(sampler) == whole[4:]


def _module(world: int, batch_size: int) -> EncryptedDataModule:
    dm = EncryptedDataModule(DataConfig(name="digits", batch_size=batch_size, train_limit=64, test_limit=32),
                             ciphers.create("tanaka", seed=0))
    dm.setup()
    dm.trainer = types.SimpleNamespace(global_rank=world - 1, world_size=world)
    return dm


def test_the_configured_batch_is_global_and_split_over_processes():
    dm = _module(world=2, batch_size=64)
    loader = dm.train_dataloader()
    assert loader.batch_size == 32 and len(loader.sampler) == -(-len(dm.train_data) // 2)
    assert _module(world=1, batch_size=64).train_dataloader().batch_size == 64
    with pytest.raises(InputError, match="batch_size=30 is the global batch and must split evenly over 4 processes"):
        _module(world=4, batch_size=30).train_dataloader()


@pytest.mark.slow
def test_two_process_ddp_on_cpu_through_train_py(tmp_path):
    done = train_cli(["trainer=ddp_cpu", "trainer.max_epochs=1", "data.train_limit=256", "data.test_limit=100",
                      "trainer.enable_progress_bar=false", "logger=csv"], tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MEMBER: 2/2" in done.stderr  # a second process joined
    (metrics_file,) = tmp_path.glob("*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["complete"] and metrics["test_images"] == 100
    ckpt = torch.load(metrics_file.parent / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4  # 256 images / global batch 64: 2 processes × 32 per step, not 8 steps of 32


@pytest.mark.slow
def test_ddp_is_refused_in_a_local_sweep_with_the_way_out(tmp_path):
    done = train_cli(["-m", "sweep=ddp", "trainer=ddp_cpu", "seed=0", "logger=csv"], tmp_path, timeout=300)
    assert done.returncode != 0
    (metrics_file,) = tmp_path.glob("sweeps/ddp/*/metrics.json")
    record = json.loads(metrics_file.read_text())
    assert record["status"] == "failed" and "launcher=slurm" in record["error"]


def test_attacks_refuse_ddp_before_any_work(tmp_path):
    from tests.helpers import ATTACK_FAST, run_attack

    with pytest.raises(InputError, match="attack.py runs on one device"):
        run_attack(["trainer=ddp_cpu", "scheme=skk", "attack=fr", *ATTACK_FAST], tmp_path)
    assert not list(tmp_path.rglob("metrics.json"))
