"""Learned attacks: the attacker's own images and keys only; a short fit beats the encrypted image."""

import pytest
import torch

from leia import attacks, ciphers
from leia.attacks.metrics import image_metrics
from tests.attacks.helpers import access_for, cifar
from tests.helpers import ATTACK_FAST, run_attack
from tests.attacks.helpers import cifar_folder


@pytest.mark.slow
@pytest.mark.parametrize("scheme, attack", [("tanaka", "itn"), ("skk_per_image", "itn"), ("tanaka", "gan")])
def test_a_short_fit_beats_the_encrypted_image_on_held_out_victims(scheme, attack, tmp_path):
    root = cifar_folder(tmp_path / "data")  # 187 attacker images, 63 disjoint victim images
    metrics, _ = run_attack([f"scheme={scheme}", f"attack={attack}", "attack.epochs=4", "data=imagefolder",
                             f"data.root={root}", *ATTACK_FAST], tmp_path / "runs")
    assert metrics["attacker_images"] == 187 and metrics["victim_images"] == 63 and metrics["epochs"] == 4
    assert metrics["metrics"]["ssim"] > metrics["baseline_encrypted"]["ssim"] + 0.04


def test_attacker_keys_are_fresh_and_never_the_victims():
    x = cifar()[0][:16]
    v = ciphers.create("tanaka", seed=0)
    a = attacks.create("itn", keys_per_batch=4)
    a.prepare(access_for(v, (32, 32)))
    first, second = a.own_ciphertexts(x), a.own_ciphertexts(x)
    assert not torch.equal(first, second)  # new keys every batch
    assert not torch.equal(first[:4], v.encrypt(x[:4]))
    same = a.own_ciphertexts(x[:1].expand(4, -1, -1, -1).contiguous())  # 4 groups of one image: 4 keys
    assert len({bytes(c.flatten().tolist()) for c in same}) == 4


def test_generator_front_end_follows_the_scheme_structure():
    for scheme, block in (("tanaka", 4), ("etc", 4), ("skk", 1), ("vit_block", 4)):
        v = ciphers.create(scheme, seed=0, **({"block_size": 4} if scheme == "vit_block" else {}))
        a = attacks.create("itn")
        a.prepare(access_for(v, (32, 32)))
        conv = a.generator.front.net[0]
        assert conv.kernel_size == (block, block) and conv.stride == (block, block)
        out = a.reconstruct(v.encrypt(cifar()[0][:2]))
        assert out.images.dtype == torch.uint8 and out.images.shape == (2, 3, 32, 32)
        assert image_metrics(out.images, cifar()[0][:2])["ssim"].shape == (2,)
