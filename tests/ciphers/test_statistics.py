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


class _Scripted:
    """A fixed byte sequence, mostly rejected bytes (>= 216), served in order whatever the read size."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.data = np.where(rng.random(20000) < 0.7, 250, rng.integers(0, 216, 20000)).astype(np.uint8)
        self.pos = 0

    def read(self, n):
        out = self.data[self.pos : self.pos + n].tobytes()
        self.pos += n
        return out


def test_vectorised_draws_equal_one_stream_at_a_time():
    from leia.ciphers.keystream import KeyDeriver, below_many, bits_many

    base = KeyDeriver(b"s", "batch")
    labels = [str(i) for i in range(40)]
    assert np.array_equal(bits_many([base.stream(i) for i in labels], 777),
                          np.stack([base.stream(i).bits(777) for i in labels]))
    assert np.array_equal(below_many([base.stream(i) for i in labels], 6, 1000),
                          np.stack([base.stream(i).below(6, 1000) for i in labels]))
    # sources that run short of accepted bytes are topped up: digits of accepted bytes, in order
    got = below_many([_Scripted(s) for s in range(5)], 6, 300)
    for s in range(5):
        accepted = [int(v) for v in _Scripted(s).data if v < 216][:100]
        expected = [(v // 6**i) % 6 for v in accepted for i in range(3)]
        assert got[s].tolist() == expected
    # and derived per-image keys equal the single-image derivation of the same label
    from leia import ciphers

    c = ciphers.create("skk", seed=2, key_mode="per_image")
    bits, color = c.per_image_components(8, 8, ["a", "b", "c"])
    for i, image_id in enumerate("abc"):
        comps = c.derive(KeyDeriver(c._secret.value, *c._label(8, 8)).child("image", image_id), 8, 8)
        assert np.array_equal(bits[i], comps["np"]) and np.array_equal(color[i], comps["color"])
