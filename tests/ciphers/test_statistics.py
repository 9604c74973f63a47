"""Statistical sanity of the key stream, so that a biased derivation cannot slip in. All draws are
deterministic (fixed labels), so these tests cannot flake; thresholds are p > 1e-4."""

import itertools
import math

import numpy as np
from scipy import stats

from leia import ciphers
from leia.ciphers.keystream import KeyStream

P_MIN = 1e-4


def chi2_p(counts: np.ndarray) -> float:
    return float(stats.chisquare(counts).pvalue)


def test_bits_are_balanced():
    bits = np.concatenate([KeyStream(b"s", "bits", str(i)).bits(4096) for i in range(50)])
    n = bits.size
    z = (bits.sum() - n / 2) / math.sqrt(n / 4)
    assert abs(z) < 4.5
    # and so are the NP bits the schemes actually use
    np_bits = np.concatenate([ciphers.create("skk", seed=s).components(32, 32)["np"].ravel() for s in range(30)])
    z = (np_bits.sum() - np_bits.size / 2) / math.sqrt(np_bits.size / 4)
    assert abs(z) < 4.5


def test_small_permutations_are_uniform_over_all_orders():
    orders = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    counts = np.zeros(24)
    for i in range(12000):
        counts[orders[tuple(KeyStream(b"s", "perm", str(i)).permutation(4).tolist())]] += 1
    assert chi2_p(counts) > P_MIN


def test_positions_of_larger_permutations_are_uniform():
    n, draws = 12, 3000
    table = np.zeros((n, n))
    for i in range(draws):
        p = KeyStream(b"s", "big", str(i)).permutation(n)
        table[np.arange(n), p] += 1
    for row in table:
        assert chi2_p(row) > P_MIN
    assert sorted(KeyStream(b"s", "x").permutation(1000).tolist()) == list(range(1000))


def test_below_is_uniform_for_powers_of_two_and_otherwise():
    for k in (2, 3, 6, 8, 100):
        values = KeyStream(b"s", "below", str(k)).below(k, 60000)
        assert values.min() >= 0 and values.max() < k
        assert chi2_p(np.bincount(values, minlength=k)) > P_MIN, k


def test_the_uniformity_check_has_power_against_a_naive_shuffle():
    """The classic bug (swap with any position, not 0..i) is biased; the chi-square test must see it."""
    orders = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    counts = np.zeros(24)
    for i in range(12000):
        words = np.frombuffer(KeyStream(b"s", "naive", str(i)).read(16), dtype=">u4")
        a = list(range(4))
        for j, w in enumerate(words):
            k = int(w) % 4
            a[j], a[k] = a[k], a[j]
        counts[orders[tuple(a)]] += 1
    assert chi2_p(counts) < 1e-6


def test_color_codes_are_uniform():
    codes = np.concatenate(
        [ciphers.create("skk", seed=s).components(32, 32)["color"].ravel() for s in range(20)]
    )
    assert chi2_p(np.bincount(codes, minlength=6)) > P_MIN
