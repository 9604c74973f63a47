"""Backbones, adapters and model-side key conversion."""

import pytest
import torch

from leia import ciphers
from leia.errors import InputError
from leia.models.adapters import ADAPTERS, create_adapter
from leia.models.backbones import BACKBONES, create_backbone
from leia.models.key_conversion import convert
from tests.helpers import random_images


@pytest.mark.parametrize("name,options", [
    ("resnet20", {}), ("resnet18_cifar", {}), ("convmixer", {"dim": 32, "depth": 2}),
    ("timm", {"model_name": "vit_tiny_patch16_224", "patch_size": 4}), ("timm", {"model_name": "resnet18"}),
    ("fastnet", {"widths": [8, 16, 16], "stem": "learned"}),
])
def test_backbones_build_for_any_input_channels(name, options):
    for in_chans, size in ((3, (32, 32)), (1, (32, 96)), (32, (32, 32))):
        model = create_backbone(name, num_classes=7, in_chans=in_chans, image_size=size, **options).eval()
        with torch.no_grad():
            assert model(torch.randn(2, in_chans, *size)).shape == (2, 7)
    assert sorted(BACKBONES.names()) == ["convmixer", "fastnet", "resnet18_cifar", "resnet20", "timm"]


def test_backbone_weights_load_from_local_files_only(tmp_path):
    model = create_backbone("resnet20", 10, 3, (32, 32))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    again = create_backbone("resnet20", 10, 3, (32, 32), checkpoint=str(tmp_path / "w.pt"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(InputError, match="does not exist"):
        create_backbone("resnet20", 10, 3, (32, 32), checkpoint=str(tmp_path / "missing.pt"))
    with pytest.raises(InputError, match="does not fit"):
        create_backbone("resnet18_cifar", 10, 3, (32, 32), checkpoint=str(tmp_path / "w.pt"))
    with pytest.raises(InputError, match="unknown timm model"):
        create_backbone("timm", 10, 3, (32, 32), model_name="resnet_does_not_exist")


def test_tanaka_adapter_is_the_papers_network():
    cipher = ciphers.create("tanaka", seed=0, block_size=4)
    adapter = create_adapter("tanaka", 3, cipher, channels=32)
    layers = [type(m).__name__ for m in adapter.net]
    assert layers == ["BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "PixelShuffle"]
    conv = adapter.net[1]
    assert conv.kernel_size == (4, 4) and conv.stride == (4, 4) and conv.out_channels == 48  # 3M²
    assert adapter.net[7].out_channels == 16 * 32  # M²·C'
    assert adapter(torch.randn(2, 3, 32, 32)).shape == (2, 32, 32, 32)


def test_adapters_refuse_schemes_they_do_not_apply_to():
    assert ADAPTERS.names() == ["none", "pixel", "tanaka"]
    with pytest.raises(InputError, match="adapter 'pixel' does not apply to scheme 'tanaka'; it applies to: plain, skk"):
        create_adapter("pixel", 3, ciphers.create("tanaka", seed=0))
    with pytest.raises(InputError, match="adapter 'tanaka' does not apply to scheme 'skk'"):
        create_adapter("tanaka", 3, ciphers.create("skk", seed=0))
    with pytest.raises(InputError, match="block_size 8 differs from the scheme's block size 4"):
        create_adapter("tanaka", 3, ciphers.create("ele", seed=0), block_size=8)
    assert create_adapter("pixel", 3, ciphers.create("skk", seed=0))(torch.randn(1, 3, 8, 8)).shape == (1, 64, 8, 8)


def normalise(x, mean, std):
    mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
    return (x.float() / 255 - mean) / std


@pytest.mark.parametrize("params", [{}, {"np": True}])
@pytest.mark.parametrize("mean,std", [(0.5, 0.25), ([0.49, 0.48, 0.45], [0.25, 0.24, 0.26])])
def test_converted_vit_on_encrypted_images_gives_the_plain_models_logits(params, mean, std):
    torch.manual_seed(0)
    vit = create_backbone("timm", 10, 3, (32, 32), model_name="vit_tiny_patch16_224", patch_size=4).eval()
    cipher = ciphers.create("vit_block", seed=3, block_size=4, **params)
    converted = convert(vit, cipher, (32, 32), mean, std).eval()
    x = random_images((8,), 32, 32)
    with torch.no_grad():
        plain = vit(normalise(x, mean, std))
        enc = converted(normalise(cipher.encrypt(x), mean, std))
        unconverted = vit(normalise(cipher.encrypt(x), mean, std))
    assert torch.allclose(enc, plain, atol=1e-4, rtol=1e-4)
    assert torch.equal(enc.argmax(1), plain.argmax(1))
    assert not torch.allclose(unconverted, plain, atol=1e-2)  # the key matters
    assert not any(p.data_ptr() == q.data_ptr() for p, q in zip(vit.parameters(), converted.parameters()))


def test_converted_convmixer_needs_a_key_without_block_scrambling():
    torch.manual_seed(0)
    mixer = create_backbone("convmixer", 10, 3, (32, 32), dim=32, depth=2, patch_size=4).eval()
    cipher = ciphers.create("vit_block", seed=4, block_size=4, np=True, scramble=False)
    converted = convert(mixer, cipher, (32, 32), 0.5, 0.25).eval()
    x = random_images((4,), 32, 32)
    with torch.no_grad():
        assert torch.allclose(converted(normalise(cipher.encrypt(x), 0.5, 0.25)), mixer(normalise(x, 0.5, 0.25)), atol=1e-4)
    with pytest.raises(InputError, match="block scrambling cannot be absorbed"):
        convert(mixer, ciphers.create("vit_block", seed=4, block_size=4), (32, 32))
    with pytest.raises(InputError, match="defined for vit_block keys"):
        convert(mixer, ciphers.create("tanaka", seed=4), (32, 32))
    with pytest.raises(InputError, match="block size is 8"):
        convert(mixer, ciphers.create("vit_block", seed=4, block_size=8, scramble=False), (32, 32))
