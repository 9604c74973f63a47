"""Shared test helpers. Scheme configurations are parametrised over the registry, so a newly registered
scheme is tested by every cipher test the moment it exists (its default parameters at least)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from leia import ciphers

# Shared reference data beside the checkout (benchmarks, reproductions); tests use tests/data.
SHARED = Path(os.environ.get("LEIA_SHARED", Path(__file__).resolve().parents[2] / "shared"))
TANAKA_VECTOR = Path(__file__).parent / "data" / "tanaka_reference.npz"

# Non-default variants worth testing per scheme; every registered name also gets its defaults.
VARIANTS: dict[str, list[dict]] = {
    "tanaka": [{"flip": "independent"}, {"block_size": 2}, {"block_size": 8}],
    "ele": [{"flip": "independent"}, {"block_size": 8}],
    "skk": [
        {"color_shuffle": False},
        {"key_mode": "per_image"},
        {"key_mode": "per_image", "color_shuffle": False},
        {"key_mode": "per_image", "per_image_keys": "random"},
        {"color_shuffle": "legacy_inplace"},
        {"key_mode": "per_image", "color_shuffle": "legacy_inplace"},
    ],
    "etc": [{"block_size": 8}, {"block_size": 16}, {"grayscale": True}, {"grayscale": True, "block_size": 8},
            {"color_shuffle": "legacy_inplace"}],
    "scramblemix": [{"color_shuffle": False, "alpha": 1.0}, {"color_shuffle": "legacy_inplace", "pairs": 2}],
    "vit_block": [{"block_size": 4}, {"block_size": 8, "np": True}, {"block_size": 16, "np": True},
                  {"block_size": 4, "scramble": False, "np": True}],
}


def scheme_configs() -> list[tuple[str, dict]]:
    out = []
    for name in ciphers.names():
        out.append((name, {}))
        out.extend((name, v) for v in VARIANTS.get(name, []))
    return out


def config_id(cfg: tuple[str, dict]) -> str:
    name, params = cfg
    return name + "".join(f"-{k}={v}" for k, v in params.items())


CONFIGS = scheme_configs()


def make(name: str, params: dict, seed: int = 0):
    return ciphers.create(name, seed=seed, **params)


def block_of(cipher) -> int:
    return cipher.block_size


def ids_for(cipher, n: int, offset: int = 0):
    return [f"img-{offset + i}" for i in range(n)] if cipher.needs_ids else None


def random_images(batch, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (*batch, 3, h, w), dtype=torch.uint8, generator=g)


def sizes_for(cipher) -> list[tuple[int, int]]:
    """A few image sizes the block size divides, non-square included."""
    m = cipher.block_size
    return [(m * 2, m * 3), (32, 32)] if 32 % m == 0 else [(m * 2, m * 3), (m * 4, m * 4)]


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


# ---------------------------------------------------------------- training runs
CONF = Path(__file__).resolve().parents[1] / "conf"
ROOT = CONF.parent


def compose_train(overrides: list[str], runs: Path):
    """Compose conf/train.yaml like `python train.py <overrides>` does (HydraConfig set, so the run
    name resolves), with run directories under `runs`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.runs={runs}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def run_train(overrides: list[str], runs: Path) -> tuple[dict, Path]:
    """Run one training configuration in-process; returns (metrics, run directory)."""
    from omegaconf import open_dict

    from leia.training import run

    cfg = compose_train(overrides, runs)
    run_dir = Path(cfg.hydra.run.dir)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return run(cfg, run_dir, choices=choices), run_dir


FAST = ["trainer.fast_dev_run=true", "trainer.enable_progress_bar=false", "logger=csv"]


def run_attack(overrides: list[str], runs: Path) -> tuple[dict, Path]:
    """Run one attack configuration in-process, as `python attack.py <overrides>` does."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from leia.attacking import run

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("attack", overrides=[*overrides, f"paths.runs={runs}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    run_dir = Path(cfg.hydra.run.dir)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return run(cfg, run_dir, choices=choices), run_dir


ATTACK_FAST = ["trainer.enable_progress_bar=false", "logger=csv"]


# ---------------------------------------------------------------- W&B offline run files
def wandb_records(path: Path) -> list:
    """The records of an offline W&B run file (run-<id>.wandb): a 7-byte header (':W&B', magic,
    version), then LevelDB-log framing (32 KiB blocks; records of 4-byte CRC, 2-byte length,
    1-byte type: full, first, middle, last) around protobuf `Record`s."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw = Path(path).read_bytes()
    assert raw[:4] == b":W&B", f"{path} is not a W&B run file"
    block, pos, records, parts = 32768, 7, [], b""
    while pos + 7 <= len(raw):
        left = block - pos % block
        if left < 7:  # block trailer: zero padding
            pos += left
            continue
        length, kind = int.from_bytes(raw[pos + 4 : pos + 6], "little"), raw[pos + 6]
        data, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            continue
        parts = data if kind in (1, 2) else parts + data
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            records.append(record)
    return records


def wandb_run(run_dir: Path) -> dict:
    """What one job logged to W&B offline: its run (id, group, job type, name), history keys,
    summary and whether it was finished (exit record). Fails unless exactly one run is there."""
    files = sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, f"expected one W&B run under {run_dir}, found {files}"
    out = {"history": set(), "summary": {}, "exit_code": None, "run": None, "file": files[0]}
    for r in wandb_records(files[0]):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out["run"] = {"id": r.run.run_id, "group": r.run.run_group, "job_type": r.run.job_type,
                          "name": r.run.display_name}
        elif kind == "history":
            out["history"] |= {item.key or "/".join(item.nested_key) for item in r.history.item}
        elif kind == "summary":
            out["summary"].update({item.key or "/".join(item.nested_key): item.value_json for item in r.summary.update})
        elif kind == "exit":
            out["exit_code"] = r.exit.exit_code
    return out
