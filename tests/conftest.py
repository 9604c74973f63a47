"""Every in-process composition of the configs needs the typed group schemas (`leia.configs`),
as train.py and attack.py register them before Hydra composes. Decoded image folders are cached
in a directory of this test session, never in the user's ~/.cache (subprocesses inherit it)."""

import os
import tempfile

from leia.configs import register

register("train")
register("attack")
os.environ["LEIA_CACHE"] = tempfile.mkdtemp(prefix="leia-test-cache-")
