"""Data sources, the deterministic augmentation, and where encryption runs."""

import numpy as np
import pytest
import torch
from PIL import Image

from leia import ciphers
from leia.data.datamodule import DataConfig, EncryptedDataModule
from leia.data.loading import Augment, EpochSampler
from leia.data.sources import DatasetNotFound, load_split
from leia.errors import InputError, UnknownNameError


def image_folder(root, classes=("a", "b"), n=4, size=16, splits=("train", "test")):
    for split in splits:
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                x = np.random.default_rng(i + 10 * len(c)).integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(x).save(root / split / c / f"{i}.png")
    return root


def test_digits_is_real_offline_data_with_a_fixed_split():
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert train.images.shape == (1437, 3, 32, 32) and test.images.shape == (360, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.images.max() == 255
    assert sorted(set(train.labels.tolist())) == list(range(10))
    assert torch.equal(load_split("digits", "test").images, test.images)


def test_image_folder_and_cifar_image_folder_format(tmp_path):
    root = image_folder(tmp_path / "data")
    train = load_split("imagefolder", "train", root=str(root))
    assert train.images.shape == (8, 3, 16, 16) and train.classes == ["a", "b"]
    assert train.labels.tolist() == [0] * 4 + [1] * 4
    same = load_split("cifar10", "train", root=str(root), format="imagefolder")
    assert torch.equal(same.images, train.images)
    (root / "test").rename(root / "val")  # val/ stands in for test/
    assert len(load_split("imagefolder", "test", root=str(root))) == 8


def test_missing_datasets_say_where_they_looked_and_how_to_get_data(tmp_path):
    with pytest.raises(DatasetNotFound, match=rf"{tmp_path}/nope.*data.download=true"):
        load_split("cifar10", "train", root=str(tmp_path / "nope"))
    with pytest.raises(DatasetNotFound, match="does not exist"):
        load_split("cifar10", "train", root=str(tmp_path / "nope"), format="imagefolder")
    image_folder(tmp_path / "only_train", splits=("train",))
    with pytest.raises(DatasetNotFound, match="no test split.*looked for"):
        load_split("imagefolder", "test", root=str(tmp_path / "only_train"))
    with pytest.raises(DatasetNotFound, match="data.root"):
        load_split("imagefolder", "train")


def test_augmentation_and_order_depend_only_on_seed_and_epoch():
    aug = Augment(pad=4, flip=0.5)
    a, b = EpochSampler(50, seed=3, shuffle=True, augment=aug), EpochSampler(50, seed=3, shuffle=True, augment=aug)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(2)
    b.skip(17)
    assert list(b) == list(a)[17:]  # resuming skips exactly the samples already seen
    x = torch.arange(3 * 8 * 8, dtype=torch.uint8).reshape(3, 8, 8)
    y = aug.apply(x, torch.tensor([4, 4, 1]))
    assert torch.equal(y, x.flip(-1))  # centre crop of the padded image, flipped
    assert (aug.apply(x, torch.tensor([0, 0, 0]))[:, :4, :4] == 0).all()  # zero padding shows


def test_alternating_flips_show_each_image_both_ways_in_consecutive_epochs():
    random, alternate = Augment(pad=2, flip=0.5), Augment(pad=2, flip=0.5, alternate_flip=True)
    flips = []
    for epoch in range(3):
        a, b = EpochSampler(400, seed=3, shuffle=True, augment=random), EpochSampler(400, seed=3, shuffle=True, augment=alternate)
        a.set_epoch(epoch), b.set_epoch(epoch)
        (order, pa), (same_order, pb) = a.plan(), b.plan()
        assert torch.equal(order, same_order) and torch.equal(pa[:, :2], pb[:, :2])  # only the flips change
        flips.append(torch.empty(400, dtype=torch.long).scatter_(0, order, pb[:, 2]))  # per image
    assert torch.equal(flips[0] ^ 1, flips[1]) and torch.equal(flips[0], flips[2])
    assert 150 < int(flips[0].sum()) < 250  # a random start per image
    b.skip(17)
    assert list(b)[0][1][2] == int(flips[2][order[17]])  # resuming keeps the epoch's flips
    with pytest.raises(InputError, match="data.alternate_flip .* needs data.flip=0.5, got 0.3"):
        Augment(flip=0.3, alternate_flip=True)


def batches(dm, loader):
    return [dm.on_after_batch_transfer(b, 0)["image"] for b in loader]


PLACED = [(name, {}) for name in ciphers.names()] + [("skk", {"key_mode": "per_image"}), ("etc", {"grayscale": True})]


@pytest.mark.parametrize("scheme,params", PLACED, ids=[n + "".join(f"-{v}" for v in p.values()) for n, p in PLACED])
def test_every_placement_gives_the_dataset_paths_ciphertexts_bit_for_bit(scheme, params):
    """The device-resident path really encrypts: for the same seed (order and augmentation), its
    batches are the dataset path's, byte for byte, for every scheme (per-image keys included)."""
    cipher = ciphers.create(scheme, seed=5, **params)
    out, raw = {}, {}
    views = cipher.views_for(True, 1) is not None  # scramblemix: no device placement (refused, tested there)
    for placement in ("dataset", "resident") if views else ("dataset", "device", "resident"):
        dm = EncryptedDataModule(DataConfig(name="digits", batch_size=100, placement=placement, train_limit=300, seed=1,
                                            pad=3), cipher)
        dm.setup()
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(1)
        got = list(loader)
        raw[placement] = [(b["label"], b["index"], list(b["id"])) for b in got]
        if placement != "device":  # device encrypts after transfer; the others hand over ciphertexts
            raw[placement + "_bytes"] = torch.cat([b["image"] for b in got])
        out[placement] = torch.cat([dm.on_after_batch_transfer(b, 0)["image"] for b in got])
    assert out["dataset"].shape[-3:] == dm.input_shape and out["dataset"].dtype == torch.float32
    assert torch.equal(out["dataset"], out.get("device", out["dataset"])) and torch.equal(out["dataset"], out["resident"])
    assert raw["resident_bytes"].dtype == torch.uint8 and torch.equal(raw["dataset_bytes"], raw["resident_bytes"])
    if scheme != "plain":  # ... and those bytes are ciphertexts, not the plain images
        assert not torch.equal(raw["resident_bytes"], torch.cat([dm.dataset("train", plain=True)[i]["image"][None]
                                                                   for i in torch.cat([r[1] for r in raw["resident"]])]))
    for (la, ia, da), (lb, ib, db) in zip(raw["dataset"], raw["resident"]):
        assert torch.equal(la, lb) and torch.equal(ia, ib) and da == db


VIEWED = PLACED + [("scramblemix", {"test_pairs": 2})]  # T = 2 of its own views, then 2 of the mirror image


@pytest.mark.parametrize("scheme,params", VIEWED, ids=[n + "".join(f"-{v}" for v in p.values()) for n, p in VIEWED])
def test_the_clients_flipped_view_is_the_encrypted_mirror_image_on_every_placement(scheme, params):
    """data.client_tta=flip: each test image comes as its own ciphertext(s) and, after them, those of
    its mirror image under the same (per-image) key, the same bytes on every placement; validation
    keeps one view, and test images without the option are the first views, unchanged."""
    cipher = ciphers.create(scheme, seed=5, **params)
    own = cipher.views_for(False, 0)
    t = 1 if own is None else len(own)
    out = {}
    for placement in ("dataset", "resident") if own is not None else ("dataset", "device", "resident"):
        dm = EncryptedDataModule(DataConfig(name="digits", eval_batch_size=40, placement=placement, test_limit=80,
                                            client_tta="flip"), cipher)
        dm.setup()
        got = list(dm.test_dataloader()[0])
        out[placement] = torch.cat([dm.on_after_batch_transfer(b, 0)["image"] for b in got])
        assert all(b["image"].dim() == (4 if own is None else 5) for b in dm.val_dataloader())  # one view
    views = out["dataset"]
    assert views.shape == (80, 2 * t, *dm.input_shape)
    assert all(torch.equal(views, v) for v in out.values())
    single = EncryptedDataModule(DataConfig(name="digits", eval_batch_size=40, placement="resident", test_limit=80),
                                 cipher)
    single.setup()
    one = torch.cat([single.on_after_batch_transfer(b, 0)["image"] for b in single.test_dataloader()[0]])
    assert torch.equal(views[:, :t], one.reshape(80, t, *one.shape[-3:]))
    ids = [f"test/{i}" for i in range(80)]
    images = dm.test_data.images
    flipped = images.flip(-1)
    mirror = (cipher.encrypt(flipped, ids=ids if cipher.needs_ids else None) if own is None
              else cipher.encrypt_views(flipped, ids, own))
    assert torch.equal(views[:, t:], dm.normalise(mirror.reshape(80, t, *mirror.shape[-3:])))
    if scheme != "plain":  # the client encrypts the mirror image: the server could not have flipped the ciphertext
        assert not torch.equal(views[:, t:], views[:, :t].flip(-1))


def test_an_unknown_client_tta_is_refused_with_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown data.client_tta 'rotate'; known: none, flip"):
        EncryptedDataModule(DataConfig(name="digits", client_tta="rotate"), ciphers.create("plain"))


def test_the_resident_loader_resumes_mid_epoch_where_it_stopped():
    cipher = ciphers.create("skk", seed=2, key_mode="per_image")
    dm = EncryptedDataModule(DataConfig(name="digits", batch_size=64, placement="resident", train_limit=300, seed=4), cipher)
    dm.setup()
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(2)
    whole = [b["image"] for b in loader]
    assert len(whole) == len(loader) == 5
    state = {"epoch": 2, "batches_done": 3}
    resumed = dm.train_dataloader()
    resumed.load_state_dict(state)
    rest = [b["image"] for b in resumed]
    assert len(rest) == 2 and all(torch.equal(a, b) for a, b in zip(whole[3:], rest))
    assert resumed.state_dict() == state


@pytest.mark.parametrize("placement", ["dataset", "resident"])
def test_the_data_module_keeps_the_loaders_position_for_a_loader_built_after_the_restore(placement):
    # Lightning restores the data module before configure_optimizers, which may build the loader
    # (trainer.estimated_stepping_batches); the position must reach whichever loader comes next.
    dm = EncryptedDataModule(DataConfig(name="digits", batch_size=64, placement=placement, train_limit=300, seed=4),
                             ciphers.create("tanaka", seed=0))
    dm.setup()
    assert dm.state_dict() == {}  # no loader yet: nothing to save (and never the key)
    dm.load_state_dict({})  # a checkpoint of an older run
    dm.load_state_dict({"train_loader": {"epoch": 2, "batches_done": 3}})
    loader = dm.train_dataloader()
    assert loader.sampler.epoch == 2 and len(list(loader)) == 2
    assert dm.state_dict() == {"train_loader": {"epoch": 2, "batches_done": 3}}
    dm.load_state_dict({"train_loader": {"epoch": 1, "batches_done": 4}})  # an existing loader takes it at once
    assert loader.sampler.epoch == 1 and len(list(loader)) == 1
    # a checkpoint written at the end of epoch 2 (every batch done): Lightning goes on with epoch 3, whole
    dm.load_state_dict({"train_loader": {"epoch": 2, "batches_done": 5}})
    loader.sampler.set_epoch(3)
    assert len(list(loader)) == 5



def test_batched_augmentation_equals_the_per_image_one():
    aug = Augment(pad=3, flip=0.5)
    x = torch.randint(0, 256, (40, 3, 9, 7), dtype=torch.uint8)
    params = aug.draw(40, torch.Generator().manual_seed(0))
    assert params[:, 2].unique().numel() == 2 and params[:, :2].unique().numel() == 7  # every shift and flip occurs
    assert torch.equal(aug.apply_batch(x, params), torch.stack([aug.apply(a, p) for a, p in zip(x, params)]))
    assert torch.equal(Augment(pad=0, flip=1.0).apply_batch(x, torch.tensor([[0, 0, 1]] * 40)), x.flip(-1))


def test_cutout_blanks_one_square_clipped_at_the_border_in_both_paths():
    aug = Augment(pad=0, flip=0.5, cutout=4)
    x = torch.randint(1, 256, (200, 3, 9, 7), dtype=torch.uint8)
    params = aug.draw(200, torch.Generator().manual_seed(0))
    assert torch.equal(params[:, :3], Augment(pad=0, flip=0.5).draw(200, torch.Generator().manual_seed(0)))
    batch = aug.apply_batch(x, params)
    assert torch.equal(batch, torch.stack([aug.apply(a, p) for a, p in zip(x, params)]))
    blank = (batch == 0).all(1)  # [B, H, W]: the pixels set to 0 in every channel
    for b, (cy, cx) in enumerate(zip(params[:, 3] % 9, params[:, 4] % 7)):
        rows = range(max(0, cy - 2), min(9, cy + 2))
        cols = range(max(0, cx - 2), min(7, cx + 2))
        expected = torch.zeros(9, 7, dtype=torch.bool)
        expected[rows.start : rows.stop, cols.start : cols.stop] = True
        assert torch.equal(blank[b], expected)
    assert (blank.flatten(1).sum(1) == 16).any() and (blank.flatten(1).sum(1) < 16).any()  # whole and clipped
    flipped = torch.where(params[:, 2, None, None, None].bool(), x.flip(-1), x)
    assert torch.equal(batch, flipped.masked_fill(blank[:, None], 0))  # the rest is the flipped image, untouched
    with pytest.raises(InputError, match="data.cutout is the side of the square set to 0 .*got -1"):
        Augment(cutout=-1)
    dm = EncryptedDataModule(DataConfig(name="digits", pad=2, alternate_flip=True, cutout=4), ciphers.create("plain"))
    assert dm._augment() == Augment(pad=2, flip=0.5, alternate_flip=True, cutout=4)  # the data config reaches it


def test_test_images_get_fresh_per_image_keys_and_plain_evaluation_is_unencrypted():
    cipher = ciphers.create("skk", seed=5, key_mode="per_image")
    dm = EncryptedDataModule(DataConfig(name="digits", eval_plain=True, augment=False), cipher)
    dm.setup()
    enc, plain = dm.test_dataloader()
    b_enc, b_plain = next(iter(enc)), next(iter(plain))
    assert b_enc["id"][0].startswith("test/")
    assert torch.equal(b_plain["image"], dm.test_data.images[b_plain["index"]])
    assert torch.equal(b_enc["image"], cipher.encrypt(dm.test_data.images[b_enc["index"]], ids=list(b_enc["id"])))
    train_key = cipher.encrypt(dm.test_data.images[:1], ids=["train/0"])
    assert not torch.equal(train_key, cipher.encrypt(dm.test_data.images[:1], ids=["test/0"]))


def test_block_size_that_does_not_divide_the_images_fails_at_setup():
    dm = EncryptedDataModule(DataConfig(name="digits"), ciphers.create("etc", seed=0, block_size=5))
    with pytest.raises(ValueError, match="not divisible by the block size 5"):
        dm.setup()


def test_image_folders_refuse_lossy_modes_like_the_folder_tool(tmp_path):
    from leia.errors import ImageFormatError

    root = image_folder(tmp_path / "data")
    Image.new("RGBA", (16, 16)).save(root / "train" / "a" / "rgba.png")
    with pytest.raises(ImageFormatError, match="mode RGBA would lose information"):
        load_split("imagefolder", "train", root=str(root))
    (root / "train" / "a" / "rgba.png").unlink()
    Image.new("L", (16, 16), 7).save(root / "train" / "a" / "gray.png")  # expands losslessly
    assert load_split("imagefolder", "train", root=str(root)).images.shape[0] == 9


def test_an_image_folder_whose_splits_disagree_is_refused(tmp_path):
    """Labels are class-folder positions and keys depend on the image size: train and test must
    have the same class folders and one image size, and a classifier needs two classes."""
    cipher = ciphers.create("etc", seed=0)

    def setup(root):
        EncryptedDataModule(DataConfig(name="imagefolder", root=str(root)), cipher).setup()

    image_folder(tmp_path / "classes", classes=("cat", "dog"), splits=("train",))
    image_folder(tmp_path / "classes", classes=("cat", "fox"), splits=("test",))
    with pytest.raises(InputError, match=r"different classes \(dog, fox only in one split\)"):
        setup(tmp_path / "classes")
    image_folder(tmp_path / "sizes", size=16, splits=("train",))
    image_folder(tmp_path / "sizes", size=32, splits=("test",))
    with pytest.raises(InputError, match=r"train images are \(16, 16\) but test images are \(32, 32\)"):
        setup(tmp_path / "sizes")
    image_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(InputError, match="needs at least 2 class folders"):
        setup(tmp_path / "one")
    image_folder(tmp_path / "fine")
    setup(tmp_path / "fine")


def test_limits_are_class_balanced_exact_and_never_below_the_class_count():
    test = load_split("digits", "test")
    assert len(test.subset(10)) == 10 and len(test.subset(25)) == 25  # 3 of the first five classes, 2 of the rest
    assert torch.bincount(test.subset(25).labels).tolist() == [3] * 5 + [2] * 5
    for bad in (0, -1, 1, 9):
        with pytest.raises(InputError, match=f"victims.limit={bad} is below the 10 classes"):
            test.per_class(bad, "victims.limit")
        with pytest.raises(InputError, match=f"data.train_limit={bad} is below"):
            test.subset(bad, "data.train_limit")


def test_an_image_folder_is_decoded_once_and_cached_by_its_contents(tmp_path, monkeypatch):
    from leia.data import sources

    monkeypatch.setenv("LEIA_CACHE", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "folder", n=3)
    first = load_split("imagefolder", "train", root=str(root))
    assert len(list((tmp_path / "cache" / "decoded").glob("*.npy"))) == 1

    def no_decoding(path):
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(sources, "read_rgb", no_decoding)
    again = load_split("imagefolder", "train", root=str(root))
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    monkeypatch.undo()
    monkeypatch.setenv("LEIA_CACHE", str(tmp_path / "cache"))
    changed = root / "train" / "a" / "0.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(changed)  # another image: another cache entry
    fresh = load_split("imagefolder", "train", root=str(root))
    assert fresh.images[0].sum() == 0 and not torch.equal(fresh.images, first.images)
    monkeypatch.setenv("LEIA_CACHE", "off")
    assert torch.equal(load_split("imagefolder", "train", root=str(root)).images, fresh.images)
