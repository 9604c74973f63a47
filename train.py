"""Training in the encrypted domain (`python train.py scheme=skk`) is not built yet: it arrives with
issue #3 (LightningDataModule + classifier LightningModule + Hydra config conf/train.yaml).

What works today is the cipher library and its tools: `leia gallery`, `leia encrypt`, `leia decrypt`,
`leia schemes`, and `from leia import ciphers` (see README.md).
"""

import sys

if __name__ == "__main__":
    sys.exit("train.py: training is not implemented yet (issue #3); see README.md for what works today")
