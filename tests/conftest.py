"""Every in-process composition of the configs needs the typed group schemas (`leia.configs`),
as train.py and attack.py register them before Hydra composes."""

from leia.configs import register

register("train")
register("attack")
