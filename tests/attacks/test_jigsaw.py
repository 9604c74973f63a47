"""Jigsaw solver on real photos: it reassembles EtC-scrambled images whose pieces are large enough,
estimates vit_block's shared pixel permutation exactly (up to the block's symmetry) from 250 CIFAR
images, and fails on ELE, whose pieces have per-block keys."""

import pytest
import torch

from leia import attacks, ciphers
from leia.attacks.blocks import flatten_blocks, to_blocks
from leia.attacks.jigsaw import Tones, estimate_block_permutation, solve
from leia.errors import InputError
from tests.attacks.helpers import access_for, cifar, photos


def jigsaw(cipher, x):
    a = attacks.create("jigsaw")
    a.check(cipher.name, cipher.config())
    a.prepare(access_for(cipher, x.shape[-2:]))
    out = a.reconstruct(cipher.encrypt(x))
    return a, out, a.score(out, cipher, x, None)


def neighbour_fraction(labels: torch.Tensor, rows: int, cols: int) -> float:
    g = labels.reshape(rows, cols)
    right = (g[:, 1:] == g[:, :-1] + 1).sum()
    down = (g[1:] == g[:-1] + cols).sum()
    return float((right + down) / (rows * (cols - 1) + (rows - 1) * cols))


def test_solver_reassembles_shuffled_photo_pieces():
    x = photos(size=128)[2:4]  # coffee, rocket
    for image in x:
        pieces = to_blocks(image[None], 16)[0]
        perm = torch.randperm(len(pieces), generator=torch.Generator().manual_seed(0))
        slots, orient, tone = solve(pieces[perm], 8, 8, orientations=1, tones=Tones(1, np_flip=False))
        labels = torch.empty(64, dtype=torch.long)
        labels[slots] = perm
        assert neighbour_fraction(labels, 8, 8) > 0.9


def test_etc_jigsaw_recovers_photos_despite_rotation_np_and_colour_shuffle():
    x = photos(size=128)[2:4]
    v = ciphers.create("etc", seed=1, block_size=16)
    _, out, score = jigsaw(v, x)
    assert out.images.shape == x.shape
    assert score["direct_comparison"].min() > 0.9 and score["neighbour_comparison"].min() > 0.9
    assert score["ssim_up_to_global"].min() > 0.9


def test_ele_pieces_have_per_block_keys_and_do_not_fit_together():
    x = photos(size=128)[2:4]
    _, _, score = jigsaw(ciphers.create("ele", seed=1, block_size=16), x)
    assert score["direct_comparison"].max() < 0.1


@pytest.mark.parametrize("np_mask", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_vit_block_pixel_permutation_is_estimated_from_pooled_cipher_statistics(np_mask, seed):
    x = cifar()[0]
    v = ciphers.create("vit_block", seed=seed, block_size=4, np=np_mask)
    a = attacks.create("jigsaw")
    a.prepare(access_for(v, (32, 32)))
    a.estimate = estimate_block_permutation(flatten_blocks(v.encrypt(x), 4).reshape(-1, 48), 4, np_mask)
    got = a.key_metrics(v)
    assert got["pixel_permutation_up_to_symmetry"] == 1.0
    assert got.get("np_mask_up_to_negative", 1.0) == 1.0


def test_vit_block_jigsaw_runs_end_to_end_and_reports_its_estimate():
    x = cifar()[0][:8]
    a, out, score = jigsaw(ciphers.create("vit_block", seed=0, block_size=4), x)
    assert out.images.shape == x.shape and set(score) == {"direct_comparison", "neighbour_comparison", "ssim_up_to_global"}
    assert "pixel_permutation_up_to_symmetry" in a.key_metrics(ciphers.create("vit_block", seed=0, block_size=4))


def test_a_puzzle_too_large_for_memory_is_refused_with_what_to_change():
    v = ciphers.create("etc", seed=0, block_size=4)
    with pytest.raises(InputError, match="use a larger block size or smaller images"):
        attacks.create("jigsaw").prepare(access_for(v, (128, 128)))


def test_vit_block_estimate_pools_every_victim_batch_observed():
    x = cifar()[0]  # class by class: a single batch would hold one or two classes only
    v = ciphers.create("vit_block", seed=2, block_size=4, np=True)
    a = attacks.create("jigsaw")
    a.prepare(access_for(v, (32, 32)))
    assert a.observes
    for batch in x.split(50):
        a.observe(v.encrypt(batch))
    a.reconstruct(v.encrypt(x[:2]))
    got = a.key_metrics(v)
    assert got["pixel_permutation_up_to_symmetry"] == 1.0 and got["np_mask_up_to_negative"] == 1.0
