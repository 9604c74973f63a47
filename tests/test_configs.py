"""Every config option composes with Hydra and instantiates; configs and the registry agree."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from leia import ciphers
from leia.errors import KeyMaterialError, UnknownNameError
from tests.helpers import random_images

CONF = Path(__file__).resolve().parents[1] / "conf"
SCHEME_OPTIONS = sorted(p.stem for p in (CONF / "scheme").glob("*.yaml"))


def compose_group(group: str, option: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(overrides=[f"+{group}={option}"])[group]


def test_every_registered_scheme_has_a_config_of_its_name():
    assert set(ciphers.names()) <= set(SCHEME_OPTIONS)


@pytest.mark.parametrize("option", SCHEME_OPTIONS)
def test_scheme_configs_instantiate(option):
    cfg = compose_group("scheme", option)
    cipher = ciphers.from_config(cfg, compose_group("key", "seed"))
    assert cipher.name == cfg.name
    for name, value in cfg.items():
        if name != "name":
            assert getattr(cipher.params, name) == value
    m = cipher.block_size
    x = random_images((2,), 2 * m, 2 * m)
    y = cipher.encrypt(x, ids=[0, 1] if cipher.needs_ids else None)
    if cipher.invertible:
        assert torch.equal(cipher.decrypt(y, ids=[0, 1] if cipher.needs_ids else None), cipher.expected_roundtrip(x))


def test_key_configs(tmp_path, monkeypatch):
    scheme = compose_group("scheme", "etc")
    seed = compose_group("key", "seed")
    assert seed.seed == 0
    monkeypatch.setenv("LEIA_SECRET", "c3" * 16)
    env = ciphers.from_config(scheme, compose_group("key", "env"))
    size = (8, 8)
    assert env.fingerprint_for(size) == ciphers.create("etc", secret="c3" * 16).fingerprint_for(size)
    path = ciphers.write_secret_file(tmp_path / "s")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        key = compose(overrides=["+key=secret_file", f"key.secret_file={path}"]).key
    assert ciphers.from_config(scheme, key).fingerprint_for(size) == ciphers.create("etc", secret_file=path).fingerprint_for(size)
    ciphers.create("etc", seed=3).save_key(tmp_path / "k.json", image_size=size)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        key = compose(overrides=["+key=key_file", f"key.key_file={tmp_path / 'k.json'}"]).key
    assert ciphers.from_config(scheme, key).fingerprint == ciphers.load(tmp_path / "k.json").fingerprint
    assert ciphers.load(tmp_path / "k.json").fingerprint == ciphers.create("etc", seed=3).fingerprint_for(size)
    with pytest.raises(UnknownNameError, match="unknown key setting"):
        ciphers.from_config(scheme, {"sead": 1})
    monkeypatch.delenv("LEIA_SECRET")
    with pytest.raises(KeyMaterialError, match="LEIA_SECRET"):
        ciphers.from_config(scheme, compose_group("key", "env"))


ATTACK_OPTIONS = sorted(p.stem for p in (CONF / "attack").glob("*.yaml"))
ATTACK_EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment" / "attack").glob("*.yaml"))


def test_every_registered_attack_has_a_config_of_its_name():
    from leia import attacks

    assert ATTACK_OPTIONS == attacks.names()


@pytest.mark.parametrize("option", ATTACK_OPTIONS)
def test_attack_configs_instantiate_with_every_parameter(option):
    from leia import attacks

    node = dict(compose_group("attack", option))
    attack = attacks.create(node.pop("name"), **node)
    assert attack.config() == node  # every parameter of the attack is set (and documented) in its file


@pytest.mark.parametrize("experiment", ATTACK_EXPERIMENTS)
def test_attack_experiments_compose(experiment):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("attack", overrides=[f"experiment=attack/{experiment}"])
    assert cfg.attack.name and cfg.victims.batch_size > 0


# ---------------------------------------------------------------- sweeps and launchers
NAMED_SWEEPS = [("train", f"sweep/{p.stem}") for p in sorted((CONF / "experiment" / "sweep").glob("*.yaml"))] + [
    ("attack", f"attack/{p.stem}") for p in sorted((CONF / "experiment" / "attack").glob("sweep_*.yaml"))]


def compose_with_hydra(config: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config, overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("config,experiment", NAMED_SWEEPS, ids=[e for _, e in NAMED_SWEEPS])
def test_named_sweeps_are_multiruns_with_a_stable_directory(config, experiment):
    from hydra.types import RunMode

    cfg = compose_with_hydra(config, [f"experiment={experiment}"])
    assert cfg.hydra.mode == RunMode.MULTIRUN and "scheme" in cfg.hydra.sweeper.params
    name = experiment.split("/")[-1]
    assert cfg.sweep == (f"attack_{name.removeprefix('sweep_')}" if config == "attack" else name)
    assert cfg.hydra.sweep.dir.endswith(f"sweeps/{cfg.sweep}")  # the same directory every time: re-running resumes
    if config == "attack":
        from leia import attacks

        assert set(cfg.hydra.sweeper.params.attack.split(",")) <= set(attacks.names())


@pytest.mark.parametrize("config", ["train", "attack"])
@pytest.mark.parametrize("launcher,target", [("basic", "BasicLauncher"), ("local", "LocalLauncher"),
                                             ("slurm", "SlurmLauncher")])
def test_launchers(config, launcher, target):
    cfg = compose_with_hydra(config, [f"launcher={launcher}"])
    assert cfg.hydra.launcher._target_.endswith(target)
    if launcher == "slurm":
        for option in ("partition", "gpus_per_node", "tasks_per_node", "cpus_per_task", "mem_gb", "timeout_min",
                       "array_parallelism", "setup", "signal_delay_s", "max_num_timeout"):
            assert option in cfg.hydra.launcher
        assert cfg.hydra.launcher.max_num_timeout > 0  # requeue at the time limit: runs resume from checkpoints
        assert cfg.hydra.launcher.submitit_folder.startswith(cfg.hydra.sweep.dir)


def test_ddp_takes_its_process_counts_from_slurm(monkeypatch):
    from omegaconf import OmegaConf

    cfg = compose_with_hydra("train", ["trainer=ddp"])
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4")
    monkeypatch.setenv("SLURM_NNODES", "2")
    resolved = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert resolved["devices"] == 4 and resolved["num_nodes"] == 2
    monkeypatch.delenv("SLURM_NTASKS_PER_NODE")
    monkeypatch.delenv("SLURM_NNODES")
    resolved = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert resolved["devices"] == "auto" and resolved["num_nodes"] == 1
