"""The LightningDataModule of encrypted-domain training.

Pipeline, in the threat model's order: plain-domain augmentation (data owner) -> encryption ->
float conversion and normalisation (the model's side). Where it runs is `data.placement`:
- `dataset`: augmentation and encryption per image in the dataset (workers, if any);
- `device`: augmentation per image in the dataset, encryption of whole batches on the device;
- `resident`: the whole split lives on the device as uint8, and each batch is gathered, augmented
  and encrypted there in batched tensor operations (`loading.ResidentLoader`), the fast path.
All three give the same tensors for the same seed and key. Images are decoded once and kept in
memory as uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import torch

from ..ciphers import BatchCipher, Cipher
from ..errors import InputError
from .loading import (Augment, EncryptedImages, EpochSampler, ResidentLoader, ResumableLoader, check_client_tta,
                      over_views)
from .sources import Images, load_split

PLACEMENTS = ("dataset", "device", "resident")
FIT_SAMPLE = 5000  # training images a backbone's data-fitted stem sees (augmented as in training)


@dataclass
class DataConfig:
    name: str = "digits"
    root: str | None = None  # where the source's files are (cifar*, imagefolder)
    format: str | None = None  # cifar*: torchvision (the binary release) | imagefolder
    download: bool = False  # cifar*: download the binary release (needs internet)
    size: int | None = None  # digits: side of the upscaled images
    batch_size: int = 128
    eval_batch_size: int = 512
    num_workers: int = 0
    placement: str = "dataset"
    augment: bool = True
    pad: int = 4
    flip: float = 0.5
    alternate_flip: bool = False  # flip each image in every other epoch (airbench) instead of at random
    cutout: int = 0  # side of a random square set to 0 after crop and flip (0: none)
    mean: float | list[float] = 0.5
    std: float | list[float] = 0.25
    eval_plain: bool = False  # also evaluate on plain (unencrypted) test images
    client_tta: str = "none"  # test-time views the client encrypts and sends (loading.CLIENT_TTA): none | flip
    train_limit: int | None = None  # class-balanced subset of the training set (CPU budgets)
    test_limit: int | None = None
    seed: int = 0


class EncryptedDataModule(L.LightningDataModule):
    """Train on images encrypted with `cipher`; test on encrypted test images (fresh per-image keys
    for per-image schemes: test ids differ from train ids) and optionally on plain test images."""

    def __init__(self, cfg: DataConfig, cipher: Cipher):
        super().__init__()
        if cfg.placement not in PLACEMENTS:
            raise InputError(f"data.placement must be one of {', '.join(PLACEMENTS)}, got {cfg.placement!r}")
        check_client_tta(cfg.client_tta)
        self.cfg = cfg
        self.cipher = cipher
        self._batch_cipher = BatchCipher(cipher)
        self.train_data: Images | None = None
        self.test_data: Images | None = None
        self._resident: dict[tuple[str, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        self._train_loader: ResumableLoader | ResidentLoader | None = None
        self._train_position: dict | None = None  # a checkpoint's loader position, until the loader exists

    # ------------------------------------------------------------------ data
    @property
    def source_options(self) -> dict:
        """The options the data source takes (those that are set)."""
        c = self.cfg
        options = {"root": c.root, "format": c.format, "download": c.download or None, "size": c.size}
        return {k: v for k, v in options.items() if v is not None}

    def prepare_data(self) -> None:
        # downloads (if asked for) happen once, on one process
        if self.cfg.download:
            load_split(self.cfg.name, "train", **self.source_options)
            load_split(self.cfg.name, "test", **self.source_options)

    def setup(self, stage: str | None = None) -> None:
        if self.train_data is None:
            train = load_split(self.cfg.name, "train", **self.source_options)
            test = load_split(self.cfg.name, "test", **self.source_options)
            self.train_data = train.subset(self.cfg.train_limit, "data.train_limit")
            self.test_data = test.subset(self.cfg.test_limit, "data.test_limit")
            self.check_compatible()

    def check_compatible(self) -> None:
        train, test = self.train_data, self.test_data
        where = f"data={self.cfg.name}" + (f" (data.root={self.cfg.root})" if self.cfg.root else "")
        if train.classes != test.classes:  # labels are class folder positions: they must mean the same
            only = sorted(set(train.classes) ^ set(test.classes))
            raise InputError(f"{where}: the train and test splits have different classes "
                             f"({', '.join(only[:5]) or 'in another order'}"
                             f"{' only in one split' if only else ''}); give both splits the same class folders")
        if len(train.classes) < 2:
            raise InputError(f"{where}: found {len(train.classes)} class ({', '.join(train.classes)}); a classifier "
                             f"needs at least 2 class folders")
        if train.images.shape[-2:] != test.images.shape[-2:]:  # a key depends on the image size
            raise InputError(f"{where}: train images are {tuple(train.images.shape[-2:])} but test images are "
                             f"{tuple(test.images.shape[-2:])}; resize both splits to one size")
        h, w = train.images.shape[-2:]
        self.cipher.check_size(h, w)  # a clear error before any training starts

    @property
    def num_classes(self) -> int:
        self.setup()
        return len(self.train_data.classes)

    @property
    def image_size(self) -> tuple[int, int]:
        self.setup()
        return tuple(self.train_data.images.shape[-2:])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape [C, H, W] of what the model sees: the ciphertext of one image."""
        return self.cipher.cipher_shape(*self.image_size)

    def _augment(self) -> Augment | None:
        return Augment(self.cfg.pad, self.cfg.flip, self.cfg.alternate_flip, self.cfg.cutout) if self.cfg.augment else None

    def dataset(self, split: str, plain: bool = False, augment: bool = False, tta: str = "none") -> EncryptedImages:
        data = self.train_data if split == "train" else self.test_data
        in_workers = not plain and self.cfg.placement == "dataset"
        if not plain and self.cfg.placement == "device" and self.cipher.views_for(split == "train", 0) is not None:
            raise InputError(f"scheme {self.cipher.name} encrypts each image into views; data.placement=device "
                             "encrypts one ciphertext per image: use data.placement=resident or dataset")
        return EncryptedImages(data, self._augment() if augment else None, self.cipher if in_workers else None, plain,
                               train=split == "train", tta=tta)

    def processes(self) -> tuple[int, int]:
        """(rank, world size) of data-parallel training; (0, 1) outside a trainer."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_batch_size(self) -> int:
        """Per process: data.batch_size is the global batch, split evenly over the processes."""
        _, world = self.processes()
        if self.cfg.batch_size % world:
            raise InputError(f"data.batch_size={self.cfg.batch_size} is the global batch and must split evenly over "
                             f"{world} processes; use a multiple of {world}")
        return self.cfg.batch_size // world

    def device(self) -> torch.device:
        trainer = self.trainer
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _loader(self, dataset: EncryptedImages, train: bool) -> ResumableLoader | ResidentLoader:
        rank, world = self.processes()
        sampler = EpochSampler(len(dataset), self.cfg.seed, shuffle=train, augment=dataset.augment,
                               rank=rank, world=world, pad=train)
        batch_size = self.train_batch_size() if train else self.cfg.eval_batch_size
        if self.cfg.placement == "resident":
            images, labels = self.resident(dataset.data)
            cipher = None if dataset.plain else self.cipher
            return ResidentLoader(dataset.data, images, labels, sampler, batch_size, dataset.augment, cipher,
                                  plain=dataset.plain, train=train, tta=dataset.tta)
        return ResumableLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
            drop_last=False,
        )

    def resident(self, data: Images) -> tuple[torch.Tensor, torch.Tensor]:
        """A split's images and labels on the training device, moved there once."""
        device = self.device()
        if (data.split, device) not in self._resident:
            self._resident[(data.split, device)] = (data.images.to(device), data.labels.to(device))
        return self._resident[(data.split, device)]

    def fit_sample(self, n: int = FIT_SAMPLE) -> torch.Tensor:
        """What the model sees in training, for a stem fitted to its inputs: `n` training images
        drawn at random (seeded by data.seed; image folders are stored class by class, so the first
        n would be one class), augmented as in training, encrypted and normalised. Augmented,
        because a stem fitted on unaugmented images meets directions in training that it never saw:
        on upscaled digits every aligned 4×4 block is nearly flat, and a tanaka block whitening fitted
        on them gave outputs up to 139 (std 3.2) on 2-pixel-shifted images against 5.8 (std 0.71) on
        the images it was fitted on; the fast recipe then never learned."""
        self.setup()
        data = self.train_data
        generator = torch.Generator().manual_seed(self.cfg.seed)
        index = torch.randperm(len(data), generator=generator)[:n].sort().values
        images = data.images[index]
        augment = self._augment()
        if augment is not None and augment.active:
            images = augment.apply_batch(images, augment.draw(len(index), generator))
        ids = [f"{data.split}/{i}" for i in index.tolist()] if self.cipher.needs_ids else None
        return self.normalise(self.cipher.encrypt(images, ids=ids))

    def train_dataloader(self):
        self._train_loader = self._loader(self.dataset("train", augment=True), train=True)
        if self._train_position is not None:
            self._train_loader.load_state_dict(self._train_position)
            self._train_position = None
        return self._train_loader

    def val_dataloader(self):
        return self._loader(self.dataset("test"), train=False)

    def test_dataloader(self):
        # The client's test-time views (data.client_tta) are for the test only: validation, and with
        # it the best epoch, scores one view, so that the option leaves training as it is.
        loaders = [self._loader(self.dataset("test", tta=self.cfg.client_tta), train=False)]
        if self.cfg.eval_plain:
            loaders.append(self._loader(self.dataset("test", plain=True), train=False))
        return loaders

    # ------------------------------------------------------------------ device side
    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        x = batch["image"]
        if self.cfg.placement == "device" and not bool(batch["plain"][0]):
            def encrypt(images: torch.Tensor, ids: list[str]) -> torch.Tensor:
                return self._batch_cipher(images, ids=ids if self.cipher.needs_ids else None)

            ids = list(batch["id"])
            x = over_views(encrypt, x, ids) if x.dim() == 5 else encrypt(x, ids)  # 5 dims: the client's views
        batch["image"] = self.normalise(x)
        return batch

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 -> float, then (x/255 - mean) / std per channel (a scalar applies to every channel)."""
        mean = torch.as_tensor(self.cfg.mean, dtype=torch.float32, device=x.device).reshape(-1, 1, 1)
        std = torch.as_tensor(self.cfg.std, dtype=torch.float32, device=x.device).reshape(-1, 1, 1)
        if mean.numel() not in (1, x.shape[-3]) or std.numel() not in (1, x.shape[-3]):
            raise InputError(f"data.mean/std need 1 or {x.shape[-3]} values for {x.shape[-3]}-channel inputs")
        return (x.float() / 255.0 - mean) / std

    # The train loader's position (epoch, batches done) is saved here as well as in Lightning's loop
    # state. Lightning restores its copy only if the loader is built after the restore; a per-step
    # schedule reads trainer.estimated_stepping_batches in configure_optimizers, which builds the
    # loader first, and the resumed epoch then started from its first batch. The data module's state
    # is restored before configure_optimizers runs. Never the key.
    def state_dict(self) -> dict[str, Any]:
        return {"train_loader": self._train_loader.state_dict()} if self._train_loader is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        position = state.get("train_loader")  # absent in checkpoints of older runs
        if position is not None and self._train_loader is not None:
            self._train_loader.load_state_dict(position)
        elif position is not None:
            self._train_position = position


def sample_grid(dm: EncryptedDataModule, n: int = 8) -> torch.Tensor:
    """uint8 [3, 2h, n·w] grid: plain training images (top) and their ciphertexts (bottom), as the
    model sees them (no augmentation)."""
    from torchvision.utils import make_grid

    dm.setup()
    x = dm.train_data.images[:n]
    ids = [f"train/{i}" for i in range(len(x))] if dm.cipher.needs_ids else None
    y = dm.cipher.encrypt(x, ids=ids)
    if y.shape[1] == 1:  # grayscale EtC: show the YCbCr planes as grey
        y = y.expand(-1, 3, -1, -1)
    if y.shape[-1] != x.shape[-1]:  # ... which are 3x wider: pad the plain images with white
        x = torch.nn.functional.pad(x, (0, y.shape[-1] - x.shape[-1]), value=255)
    return make_grid(torch.cat([x, y]), nrow=len(x), padding=2, pad_value=255)
