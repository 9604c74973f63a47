"""Attack encrypted images: `python attack.py scheme=tanaka attack=tanaka_cpa` (see conf/attack.yaml)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="attack", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from leia.attacking import run
    from leia.sweeps import run_job

    hc = HydraConfig.get()
    run_job(run, cfg, hc.runtime.output_dir, dict(hc.runtime.choices), task="attack")


if __name__ == "__main__":
    from leia.argv_guard import refuse_secrets

    refuse_secrets()  # before Hydra writes the overrides to .hydra/
    from leia.configs import register

    register("attack")  # typed config groups: a misspelt setting fails when the config is composed
    main()
