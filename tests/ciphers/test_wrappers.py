"""The two pipeline wrappers: a torchvision v2 transform (dataset workers) and a batch module
(device side). Both must give exactly what cipher.encrypt gives."""

import pickle

import PIL.Image
import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from leia import ciphers
from leia.errors import InputError
from tests.helpers import CONFIGS, config_id, ids_for, make, random_images

KEYED = [c for c in CONFIGS if c[1].get("per_image_keys") != "random"]


@pytest.mark.parametrize("cfg", KEYED, ids=config_id)
def test_transform_and_batch_module_match_encrypt(cfg):
    name, params = cfg
    c = make(name, params)
    x = random_images((3,), 32, 32) if 32 % c.block_size == 0 else random_images((3,), 2 * c.block_size, 2 * c.block_size)
    ids = ids_for(c, 3)
    expected = c.encrypt(x, ids=ids)
    t = ciphers.CipherTransform(c)
    for i in range(3):
        sample = {"image": tv_tensors.Image(x[i]), "label": 7}
        if c.needs_ids:
            sample["id"] = ids[i]
        out = t(sample)
        assert isinstance(out["image"], tv_tensors.Image) and out["label"] == 7
        assert torch.equal(out["image"].as_subclass(torch.Tensor), expected[i])
    module = ciphers.BatchCipher(c)
    assert torch.equal(module(x, ids=ids), expected)
    assert module.state_dict() == {} and list(module.parameters()) == []
    if c.invertible:
        assert torch.equal(ciphers.BatchCipher(c, inverse=True)(expected, ids=ids), c.expected_roundtrip(x))


def test_transform_in_a_compose_with_plain_augmentation_first():
    c = ciphers.create("tanaka", seed=0)
    pipeline = v2.Compose([v2.PILToTensor(), v2.RandomHorizontalFlip(p=1.0), ciphers.CipherTransform(c)])
    img = random_images((), 16, 16)
    pil = PIL.Image.fromarray(img.permute(1, 2, 0).numpy())
    out, label = pipeline(pil, 3)
    assert label == 3 and torch.equal(out, c.encrypt(img.flip(-1)))
    assert torch.equal(ciphers.CipherTransform(c, inverse=True)(out), img.flip(-1))


def test_transform_refuses_pil_and_missing_ids():
    with pytest.raises(InputError, match="PILToTensor"):
        ciphers.CipherTransform(ciphers.create("tanaka", seed=0))(PIL.Image.new("RGB", (8, 8)))
    t = ciphers.CipherTransform(ciphers.create("skk", seed=0, key_mode="per_image"))
    with pytest.raises(InputError, match="needs the image id"):
        t(random_images((), 8, 8))


class _Images(Dataset):
    def __init__(self, x, transform):
        self.x, self.transform = x, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.transform({"image": self.x[i], "id": f"train/{i}", "label": i % 10})


@pytest.mark.parametrize("params", [{"key_mode": "same"}, {"key_mode": "per_image"}])
def test_dataset_workers_and_device_side_encryption_give_identical_tensors(params):
    c = ciphers.create("skk", seed=11, **params)
    x = random_images((12,), 8, 8)
    loader = DataLoader(_Images(x, ciphers.CipherTransform(c)), batch_size=4, num_workers=2)
    in_workers = torch.cat([b["image"] for b in loader])
    ids = [f"train/{i}" for i in range(12)] if c.needs_ids else None
    assert torch.equal(in_workers, ciphers.BatchCipher(c)(x, ids=ids))


def test_ciphers_pickle_for_worker_processes_without_their_caches():
    c = ciphers.create("ele", seed=2)
    x = random_images((2,), 16, 16)
    y = c.encrypt(x)
    clone = pickle.loads(pickle.dumps(c))
    assert clone._maps == {} and torch.equal(clone.encrypt(x), y)
