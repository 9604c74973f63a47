"""Attacks on encrypted images (`python attack.py scheme=tanaka attack=tanaka_cpa`) are not built
yet: they arrive with issue #4 (attack registry, Lightning attack tasks, conf/attack/).

What works today is the cipher library and its tools: `leia gallery`, `leia encrypt`, `leia decrypt`,
`leia schemes`, and `from leia import ciphers` (see README.md).
"""

import sys

if __name__ == "__main__":
    sys.exit("attack.py: attacks are not implemented yet (issue #4); see README.md for what works today")
