"""Published accuracies that leia's tables are read beside (../shared/docs/anchors.md), by paper:
`python -m leia.report <sweep> --paper madono2020` adds them, with the gap to plain, to the report.

Each entry: what the numbers are, the data set they are on, and top-1 test accuracy (%) per
(scheme config, adaptation). Their EtC column used the channel-duplicating EtC code, which is
`etc_legacy` here; leia's correct `etc` has no published counterpart in this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Published:
    source: str
    data: str
    acc1: dict[tuple[str, str], float]  # (scheme config, adapter) -> top-1 %


PAPERS = {
    "madono2020": Published(
        source="Madono et al. (AAAI-20 WS), Table 3: Shake-PyramidNet-110, 300 epochs, best test epoch",
        data="cifar10",
        acc1={("plain", "none"): 96.70, ("tanaka", "none"): 94.94, ("etc_legacy", "none"): 85.94,
              ("ele", "none"): 67.10, ("plain", "tanaka"): 95.64, ("tanaka", "tanaka"): 94.49,
              ("etc_legacy", "tanaka"): 80.16, ("ele", "tanaka"): 48.39},
    ),
    "madono2023": Published(
        source="Madono, Tanaka, Onishi (PSIVT 2023), ScrambleMix slides (psivt.pdf p. 39-40; the paper is not "
               "public): ShakeDrop PyramidNet-110, CIFAR-10; random PE = pixel-based encryption (skk here); "
               "scramblemix_tta = ScrambleMix with test-time averaging over T = 4 key pairs (its /one_view row: the same "
               "run scored on one view, i.e. ScrambleMix without averaging)",
        data="cifar10",
        acc1={("tanaka", "none"): 94.02, ("skk", "none"): 93.51, ("scramblemix", "none"): 95.02,
              ("scramblemix_tta/one_view", "none"): 95.02, ("scramblemix_tta", "none"): 95.31},
    ),
}


def paper(name: str) -> Published:
    if name not in PAPERS:
        raise InputError(f"unknown paper {name!r}; published tables: {', '.join(PAPERS)}")
    return PAPERS[name]
