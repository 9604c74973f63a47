"""Deterministic, resumable loading of in-memory uint8 images.

The data owner's side of the pipeline: plain-domain augmentation (random crop with padding, then a
horizontal flip), then — when encryption runs in the dataset workers — encryption. Every random
choice is a function of (seed, epoch, position in the epoch): the sampler draws the epoch's order and
augmentation parameters up front and hands them to the workers, so results do not depend on the
number of workers, on where encryption runs, or on whether the run was interrupted and resumed.

The dataset calls `cipher.encrypt` itself rather than composing `ciphers.CipherTransform` into a
torchvision pipeline: the augmentation parameters come from the sampler (drawn per (seed, epoch,
position), not by the transform's own random state), which is what makes a resumed run bit-exact,
and the per-image id is the dataset's to give. `CipherTransform` is for users' own pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..ciphers import Cipher
from ..errors import InputError, UnknownNameError
from .sources import Images


@dataclass(frozen=True)
class Augment:
    """Random crop (zero padding `pad`) and horizontal flip with probability `flip`, in the plain domain.
    `alternate_flip` (airbench's alternating flip): each image is flipped in every other epoch, from a
    random start per image, so that two consecutive epochs show both of its mirror images.
    `cutout` (DeVries & Taylor 2017): then a `cutout`×`cutout` square at a random centre, clipped at
    the border, is set to 0, as the padding is."""

    pad: int = 4
    flip: float = 0.5
    alternate_flip: bool = False
    cutout: int = 0

    def __post_init__(self):
        if self.cutout < 0:
            raise InputError(f"data.cutout is the side of the square set to 0 (0: none), got {self.cutout}")
        if self.alternate_flip and self.flip != 0.5:
            raise InputError(f"data.alternate_flip flips each image in every other epoch (half of all views), so "
                             f"it needs data.flip=0.5, got {self.flip}")

    @property
    def active(self) -> bool:
        return self.pad > 0 or self.flip > 0 or self.cutout > 0

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """[n, 3] int64 parameters (dy, dx, flip) for n images, and with `cutout` two more: the
        square's centre, as numbers that `apply` takes modulo the image's height and width (the
        draw does not know the image size). Drawn after the others, which stay as without cutout."""
        shifts = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=generator)
        flips = (torch.rand(n, generator=generator) < self.flip).long()[:, None]
        parts = [shifts, flips]
        if self.cutout:
            parts.append(torch.randint(0, 1 << 24, (n, 2), generator=generator))
        return torch.cat(parts, dim=1)

    def _cutout_spans(self, params: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """First rows and columns of the squares ([...] each; they may start before 0 and end past the edge)."""
        return params[..., 3] % h - self.cutout // 2, params[..., 4] % w - self.cutout // 2

    def alternating_flips(self, n: int, seed: int, epoch: int) -> torch.Tensor:
        """[n] flips of images 0..n-1 in `epoch`: a random start per image (from `seed` alone, a stream
        apart from the epochs'), then flipped in every other epoch."""
        start = torch.rand(n, generator=torch.Generator().manual_seed(-1 - seed)) < 0.5
        return (start ^ bool(epoch % 2)).long()

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        dy, dx, flip = (int(v) for v in params[:3])
        h, w = x.shape[-2:]
        if self.pad:
            x = torch.nn.functional.pad(x, (self.pad,) * 4)[..., dy : dy + h, dx : dx + w]
        x = x.flip(-1) if flip else x
        if self.cutout:
            y0, x0 = (int(v) for v in self._cutout_spans(params, h, w))
            x = x.clone()
            x[..., max(0, y0) : max(0, y0 + self.cutout), max(0, x0) : max(0, x0 + self.cutout)] = 0
        return x

    def apply_batch(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """`apply` on a batch [B, C, H, W] with parameters [B, 3 or 5], as one gather where x lives."""
        b, _, h, w = x.shape
        params = params.to(x.device)
        rows = params[:, 0:1] + torch.arange(h, device=x.device)  # [B, H] rows of the padded image
        cols = params[:, 1:2] + torch.arange(w, device=x.device)  # [B, W]
        cols = torch.where(params[:, 2:3].bool(), cols.flip(-1), cols)  # a flip reads the columns backwards
        padded = torch.nn.functional.pad(x, (self.pad,) * 4) if self.pad else x
        batch = torch.arange(b, device=x.device)[:, None, None]
        x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
        if self.cutout:
            y0, x0 = self._cutout_spans(params, h, w)
            ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
            in_rows = (ys >= y0[:, None]) & (ys < y0[:, None] + self.cutout)  # [B, H]
            in_cols = (xs >= x0[:, None]) & (xs < x0[:, None] + self.cutout)  # [B, W]
            x = x.masked_fill(in_rows[:, None, :, None] & in_cols[:, None, None, :], 0)
        return x


class EpochSampler(Sampler):
    """Yields (index, augmentation parameters, epoch) for one epoch; the order and the parameters
    depend only on (seed, epoch). `skip(n, epoch)` makes that epoch start at its n-th sample
    (resume); it is dropped if the loop moves on to another epoch first (a checkpoint written at the
    end of an epoch records all its batches done, and the resumed run starts the next epoch whole).

    Data-parallel: process `rank` of `world` takes every world-th position of the epoch's order, so
    the processes see disjoint parts of one and the same epoch. With `pad`, the order wraps around
    to a multiple of `world` (training: every process must run the same number of steps); without,
    the shards differ by at most one image and every image is seen once (evaluation stays exact)."""

    def __init__(self, n: int, seed: int, shuffle: bool, augment: Augment | None, rank: int = 0, world: int = 1,
                 pad: bool = True):
        self.n, self.seed, self.shuffle, self.augment = n, seed, shuffle, augment
        self.rank, self.world, self.pad = rank, world, pad
        self.epoch = 0
        self._skip, self._skip_epoch = 0, None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip(self, samples: int, epoch: int | None = None) -> None:
        """Start epoch `epoch` (None: whichever is planned next) at its `samples`-th sample."""
        self._skip, self._skip_epoch = samples, epoch

    def _positions(self) -> range:
        total = -(-self.n // self.world) * self.world if self.pad else self.n
        return range(self.rank, total, self.world)

    def __len__(self) -> int:
        return len(self._positions())

    def plan(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The rest of this process's epoch at once: image indices [n] and their augmentation
        parameters [n, 3] (None without augmentation). Consumes a pending `skip`."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        params = self.augment.draw(self.n, g) if self.augment and self.augment.active else None
        if params is not None and self.augment.alternate_flip:  # the draw's flips are replaced; its shifts stay
            params[:, 2] = self.augment.alternating_flips(self.n, self.seed, self.epoch)[order]
        start = self._skip if self._skip_epoch in (None, self.epoch) else 0
        self._skip, self._skip_epoch = 0, None
        positions = self._positions()[start:]
        k = torch.arange(positions.start, positions.stop, positions.step, dtype=torch.long) % self.n  # padding wraps
        return order[k], (None if params is None else params[k])

    def __iter__(self) -> Iterator[tuple[int, tuple[int, ...] | None, int]]:
        indices, params = self.plan()
        for i, index in enumerate(indices.tolist()):
            yield index, (None if params is None else tuple(params[i].tolist())), self.epoch


def encrypt_for(cipher: Cipher, x: torch.Tensor, ids: list[str], train: bool, epoch: int) -> torch.Tensor:
    """x [B, C, H, W] encrypted as the model sees it: one ciphertext each, or [B, V, C, H, W] views
    for a multi-view scheme (scramblemix: which views depends on train/test and the epoch). Plain
    client views x [B, V, C, H, W] (`client_views`) give the views of each image side by side:
    [B, V·T, C, H, W] (T: the scheme's own views, 1 for a one-ciphertext scheme)."""
    if x.dim() == 5:
        return over_views(lambda images, names: encrypt_for(cipher, images, names, train, epoch), x, ids)
    views = cipher.views_for(train, epoch)
    if views is None:
        return cipher.encrypt(x, ids=ids if cipher.needs_ids else None)
    return cipher.encrypt_views(x, ids, views)


# Client-side test-time augmentation (`data.client_tta`): the client, who holds the key, encrypts
# plain-domain views of its test image (each with the image's own key) and sends them together; the
# model's posteriors over the views are averaged. The server alone cannot do this: it cannot flip a
# ciphertext. View 0 is always the image itself, so the test also scores it alone (`test_one_view`).
CLIENT_TTA: dict[str, tuple[bool, ...] | None] = {  # name -> for each view, whether it is the mirror image
    "none": None,
    "flip": (False, True),
}


def check_client_tta(name: str) -> None:
    if name not in CLIENT_TTA:
        raise UnknownNameError(f"unknown data.client_tta {name!r}; known: {', '.join(CLIENT_TTA)}")


def over_views(encrypt: Callable[[torch.Tensor, list[str]], torch.Tensor], x: torch.Tensor,
               ids: list[str]) -> torch.Tensor:
    """`encrypt(images, ids)` of a batch of client views x [B, V, C, H, W], each view under its
    image's id: [B, V·T, C, H, W] (image 0's views, each with its T, then image 1's). One call per
    view, so that no batch repeats an id (which a per-image scheme warns about as a reused key)."""
    y = torch.stack([encrypt(x[:, v], ids) for v in range(x.shape[1])], dim=1)
    return y.reshape(x.shape[0], -1, *y.shape[-3:])


def client_views(x: torch.Tensor, tta: str) -> torch.Tensor:
    """Plain images [..., C, H, W] -> their client views [..., V, C, H, W] (x itself for `none`)."""
    mirrors = CLIENT_TTA[tta]
    if mirrors is None:
        return x
    return torch.stack([x.flip(-1) if m else x for m in mirrors], dim=-4)


class EncryptedImages(Dataset):
    """Items are dicts: image (uint8, augmented, encrypted when `cipher` is given; [V, C, H, W]
    views for a multi-view scheme), label, index, id (the image's stable id) and plain (True for a
    loader whose images are never encrypted)."""

    def __init__(self, data: Images, augment: Augment | None = None, cipher: Cipher | None = None, plain: bool = False,
                 train: bool = False, tta: str = "none"):
        self.data, self.augment, self.cipher, self.plain, self.train = data, augment, cipher, plain, train
        self.tta = tta  # the client's test-time views (`client_views`): [V, C, H, W] per item, before encryption

    def __len__(self) -> int:
        return len(self.data)

    def image_id(self, index: int) -> str:
        """Stable identifier of an image, the key of its per-image key: split/index."""
        return f"{self.data.split}/{index}"

    def __getitem__(self, item) -> dict:
        index, params, epoch = item if isinstance(item, tuple) else (item, None, 0)
        x = self.data.images[index]
        if params is not None:
            x = self.augment.apply(x, torch.tensor(params))
        x = client_views(x, self.tta)
        if self.cipher is not None:
            x = encrypt_for(self.cipher, x[None], [self.image_id(index)], self.train, epoch)[0]
        return {"image": x.contiguous(), "label": self.data.labels[index], "index": index,
                "id": self.image_id(index), "plain": self.plain}


class LoaderState:
    """What Lightning checkpoints of a loader mid-epoch: (epoch, batches done by the training loop),
    reported by `LoaderProgress` before each checkpoint is written; resuming skips those batches."""

    def state_dict(self) -> dict:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.set_epoch(state["epoch"])
        self.sampler.skip(state["batches_done"] * self.batch_size, epoch=state["epoch"])
        self.batches_done = state["batches_done"]


class ResumableLoader(LoaderState, DataLoader):
    """A DataLoader that Lightning can checkpoint mid-epoch: its state is (epoch, batches done by
    the training loop), reported by `BatchProgress` before each checkpoint is written."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches_done = 0


class ResidentLoader(LoaderState):
    """The device-resident data path (`data.placement: resident`): the split's uint8 images live on
    the training device, and each batch is gathered, augmented, encrypted and labelled there in a
    few batched tensor operations: no workers, no per-image Python. Its order and augmentation come
    from the same `EpochSampler` as the dataset path's, so for the same seed its ciphertexts are
    the dataset path's, bit for bit, and it resumes the same way (state: epoch, batches done)."""

    def __init__(self, data: Images, images: torch.Tensor, labels: torch.Tensor, sampler: EpochSampler,
                 batch_size: int, augment: Augment | None, cipher: Cipher | None, plain: bool = False,
                 train: bool = False, tta: str = "none"):
        self.data, self.images, self.labels = data, images, labels
        self.sampler, self.batch_size = sampler, batch_size
        self.batch_sampler = None  # (Lightning looks for one: batches are cut here, from the sampler's plan)
        self.augment, self.cipher, self.plain, self.train, self.tta = augment, cipher, plain, train, tta
        self.batches_done = 0

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        indices, params = self.sampler.plan()
        device = self.images.device
        on_device = indices.to(device)  # the epoch's plan moves once, not per batch
        params = None if params is None else params.to(device)
        names = [f"{self.data.split}/{i}" for i in indices.tolist()]
        for start in range(0, len(indices), self.batch_size):
            index = on_device[start : start + self.batch_size]
            x = self.images[index]
            if params is not None:
                x = self.augment.apply_batch(x, params[start : start + self.batch_size])
            ids = names[start : start + self.batch_size]
            x = client_views(x, self.tta)
            if self.cipher is not None:
                x = encrypt_for(self.cipher, x, ids, self.train, self.sampler.epoch)
            yield {"image": x, "label": self.labels[index], "index": index, "id": ids,
                   "plain": torch.full((len(index),), self.plain, device=x.device)}

