"""Train a classifier on encrypted images: `python train.py scheme=skk` (see conf/train.yaml)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from leia.training import run
    from leia.sweeps import run_job

    hc = HydraConfig.get()
    run_job(run, cfg, hc.runtime.output_dir, dict(hc.runtime.choices), task="train")


if __name__ == "__main__":
    from leia.argv_guard import refuse_secrets

    refuse_secrets()  # before Hydra writes the overrides to .hydra/
    from leia.configs import register

    register("train")  # typed config groups: a misspelt setting fails when the config is composed
    main()
