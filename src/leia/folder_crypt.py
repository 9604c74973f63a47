"""The data owner's tool: encrypt a folder of images into a folder of lossless PNGs, with the key
written elsewhere, and decrypt such a folder back.

The folder layout is kept (train/cat/0001.jpg -> train/cat/0001.png), so image-folder datasets stay
image-folder datasets. An image's id for per-image keys is its relative path without extension,
which survives the change of extension. What is guaranteed:
- Every input is checked before anything is written: readable image headers (the file is named
  otherwise), one frame per file, a mode that converts to RGB losslessly, one image size when the
  key depends on it, and no two inputs that would become the same PNG (a.jpg and a.png), which
  would also share a per-image key.
- An encrypted folder is complete and verified, or marked incomplete. The manifest
  (leia-encryption.json) names the scheme, its parameters, the key fingerprint and every file with
  its SHA-256; it says `"complete": false` until the last file and the key file are written. Files
  are written atomically (a temporary file, then a rename), so an interrupted run leaves no
  truncated PNG, and the same command resumes it (files already written are verified, not redone).
- One writer at a time: the output folder is locked (flock) while it is written.
- `decrypt` checks the key: the scheme, parameters and fingerprint must match the manifest, the
  folder must be complete, and every file must be listed with its checksum (renamed, moved, added
  or altered files are refused, by name). A folder without a manifest is refused unless --force.
- Nothing is ever overwritten, and the key may not be written inside the folder that is shared.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from .ciphers import Cipher, load
from .errors import ImageFormatError, InputError, KeyMismatchError, NotInvertibleError
from .images import IMAGE_SUFFIXES, LOSSLESS_TO_RGB, is_image, open_rgb

MANIFEST = "leia-encryption.json"
FORMAT, VERSION = "leia-encrypted-folder", 2
BATCH = 256
UNREADABLE = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


@dataclass
class Report:
    images: int = 0
    converted_to_rgb: int = 0
    key_file: str | None = None
    fingerprint: str = ""
    resumed: int = 0  # files an interrupted run had already written (verified, not redone)


@dataclass(frozen=True)
class Entry:
    """One input image and the PNG it becomes."""

    path: Path
    out: str  # relative path of the PNG, posix
    size: tuple[int, int]


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if is_image(p))


def image_id(root: Path, path: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def survey(src: Path, files: list[Path], channels: int = 3) -> list[Entry]:
    """Check every input's header before anything is written (see the module docstring)."""
    entries, sources = [], {}
    for path in files:
        try:
            with Image.open(path) as im:
                frames = getattr(im, "n_frames", 1)
                mode, (w, h) = im.mode, im.size
        except UNREADABLE as e:
            raise ImageFormatError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
        if frames > 1:
            raise ImageFormatError(f"{path}: holds {frames} frames; leia encrypts single images. Split it into one "
                                   f"file per frame first")
        if channels == 3 and mode != "RGB" and mode not in LOSSLESS_TO_RGB:
            raise ImageFormatError(f"{path}: image mode {mode} would lose information as RGB; convert it first")
        out = path.relative_to(src).with_suffix(".png").as_posix()
        sources.setdefault(out, []).append(path.relative_to(src).as_posix())
        entries.append(Entry(path, out, (h, w)))
    clashes = {out: names for out, names in sources.items() if len(names) > 1}
    if clashes:
        shown = "; ".join(f"{' and '.join(names)} -> {out}" for out, names in list(clashes.items())[:3])
        raise InputError(f"{len(clashes)} output name(s) would be written twice, and would share a per-image key "
                         f"({shown}). Rename the inputs so that no two differ only in their extension")
    return entries


def read_image(path: Path, channels: int, report: Report | None = None) -> torch.Tensor:
    try:
        with Image.open(path) as im:
            if channels == 3:
                im, converted = open_rgb(im, path)
                if converted and report is not None:
                    report.converted_to_rgb += 1
            elif im.mode != "L":
                raise ImageFormatError(f"{path}: expected a single-channel (mode L) ciphertext PNG, got mode {im.mode}")
            a = np.asarray(im, dtype=np.uint8)
    except UNREADABLE as e:
        raise ImageFormatError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    return torch.from_numpy(a.copy()).permute(2, 0, 1) if a.ndim == 3 else torch.from_numpy(a.copy())[None]


def png_bytes(x: torch.Tensor) -> bytes:
    a = x.cpu().numpy()
    img = Image.fromarray(a[0], mode="L") if a.shape[0] == 1 else Image.fromarray(a.transpose(1, 2, 0), mode="RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG")  # lossless: the bytes the cipher produced, exactly
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_png(path: Path, x: torch.Tensor) -> str:
    """Write one image as a PNG atomically; returns the file's SHA-256."""
    data = png_bytes(x)
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One leia process writes a folder at a time (flock on the folder itself, released on exit)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{folder} is being written by another leia process; wait for it to end") from None
        yield
    finally:
        os.close(fd)


def _check_folders(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise InputError(f"source folder {src} does not exist")
    if dst.resolve() == src.resolve() or dst.resolve().is_relative_to(src.resolve()):
        raise InputError(f"the output folder {dst} must not be inside the source folder {src}")


def _batches(entries: list[Entry], channels: int, report: Report) -> Iterator[tuple[list[Entry], torch.Tensor]]:
    """Consecutive images of one size, stacked, at most BATCH at a time."""
    group: list[Entry] = []
    tensors: list[torch.Tensor] = []
    for entry in entries:
        x = read_image(entry.path, channels, report)
        if tensors and (x.shape != tensors[0].shape or len(tensors) == BATCH):
            yield group, torch.stack(tensors)
            group, tensors = [], []
        group.append(entry)
        tensors.append(x)
    if tensors:
        yield group, torch.stack(tensors)


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path} is not readable JSON ({type(e).__name__}: {e})") from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path} was written by an older leia (no file list or checksums), so nothing can check the "
                         f"key or the files: ask for the folder to be encrypted again, or decrypt it with --force")
    return manifest


def _write_manifest(dst: Path, header: dict, files: dict, sources: dict, complete: bool) -> None:
    """`files`: output PNG -> its SHA-256; `sources`: output PNG -> its source file's SHA-256 (a resumed
    run re-encrypts an image whose source changed since)."""
    body = {**header, "complete": complete, "images": len(files), "files": dict(sorted(files.items())),
            "sources": dict(sorted(sources.items()))}
    write_atomic(dst / MANIFEST, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(dst: Path, manifest: dict, entries: list[Entry]) -> dict:
    """The listed files that exist with their checksum and whose source is unchanged (an
    interrupted run's finished work); leftover temporary files of a killed write are removed."""
    for tmp in dst.rglob(".*.tmp"):
        tmp.unlink()
    files, sources = manifest.get("files", {}), manifest.get("sources", {})
    source_of = {e.out: e.path for e in entries}
    return {rel: sha for rel, sha in files.items()
            if (dst / rel).is_file() and _sha(dst / rel) == sha
            and rel in sources and _sha(source_of[rel]) == sources[rel]}


def encrypt_folder(cipher: Cipher, src: Path, dst: Path, key_out: Path | None, progress: bool = True) -> Report:
    src, dst = Path(src), Path(dst)
    _check_folders(src, dst)
    files = list_images(src)
    if not files:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {src}")
    entries = survey(src, files)
    report = Report()
    storable = cipher.keyed and cipher.uses_secret  # plain has no key; throw-away keys are never kept
    if storable and key_out is None:
        raise InputError("give --key-out: the key file the data owner keeps (outside the shared folder)")
    if not storable and key_out is not None:
        raise InputError(f"{cipher!r} has no key to write; leave out --key-out")
    size = entries[0].size
    if storable and cipher.shape_dependent:
        other = next((e for e in entries if e.size != size), None)
        if other is not None:
            raise ImageFormatError(
                f"{other.path} is {other.size[0]}x{other.size[1]} but {entries[0].path} is {size[0]}x{size[1]}: "
                f"{cipher.name} keys depend on the image size, so one folder must hold one size")
    sized = storable and cipher.shape_dependent
    header = {"format": FORMAT, "version": VERSION, "scheme": cipher.name, "params": cipher.key_params(),
              "fingerprint": cipher.fingerprint_for(size if sized else None),
              "image_size": list(size) if sized else None, "key_ids": "relative path without extension"}

    dst.mkdir(parents=True, exist_ok=True)
    with locked(dst):
        done = _resumable(dst, header, entries)
        if key_out is not None:
            key_out = Path(key_out)
            if key_out.resolve().is_relative_to(dst.resolve()):
                raise InputError(f"the key file {key_out} must not be written inside the shared folder {dst}")
            if key_out.exists() and not (done is not None and load(key_out).fingerprint == header["fingerprint"]):
                raise FileExistsError(f"{key_out} already exists; refusing to overwrite a key file")
        written = done or {}
        sources = {e.out: _sha(e.path) for e in entries if e.out in written}
        report.resumed = len(written)
        todo = [e for e in entries if e.out not in written]
        _write_manifest(dst, header, written, sources, complete=False)
        with tqdm(total=len(entries), initial=len(written), desc=f"encrypt ({cipher.name})", unit="img",
                  disable=not progress) as bar:
            for group, x in _batches(todo, 3, report):
                ids = [image_id(src, e.path) for e in group] if cipher.needs_ids else None
                for entry, yi in zip(group, cipher.encrypt(x, ids=ids)):
                    written[entry.out] = write_png(dst / entry.out, yi)
                    sources[entry.out] = _sha(entry.path)
                _write_manifest(dst, header, written, sources, complete=False)
                bar.update(len(group))
        if key_out is not None and not key_out.exists():
            cipher.save_key(key_out, image_size=size if cipher.shape_dependent else None)
        if key_out is not None:
            report.key_file = str(key_out)
        _write_manifest(dst, header, written, sources, complete=True)
    report.images, report.fingerprint = len(written), header["fingerprint"]
    return report


def _resumable(dst: Path, header: dict, entries: list[Entry]) -> dict | None:
    """None for an empty output folder; for an incomplete folder of this same job (source files,
    scheme, parameters, key), the files it already holds, verified. Anything else is refused."""
    manifest = read_manifest(dst)
    others = [p for p in dst.iterdir() if p.name != MANIFEST]
    if manifest is None:
        if others:
            raise FileExistsError(f"output folder {dst} is not empty; refusing to overwrite")
        return None
    if manifest.get("complete"):
        raise FileExistsError(f"output folder {dst} already holds a complete encrypted folder; refusing to overwrite")
    differs = [k for k in ("scheme", "params", "fingerprint", "image_size") if manifest.get(k) != header[k]]
    outs = {e.out for e in entries}
    strays = sorted(set(manifest.get("files", {})) - outs)
    if differs or strays:
        why = (f"its {', '.join(differs)} differ" if differs else f"it holds files this source does not ({strays[0]})")
        raise InputError(f"{dst} holds an interrupted encryption of another job ({why}); finish it with its own "
                         f"command, or choose an empty output folder")
    return _verified(dst, manifest, entries)


def _check_key(cipher: Cipher, manifest: dict, src: Path) -> None:
    if manifest["scheme"] != cipher.name:
        raise KeyMismatchError(f"{src} was encrypted with scheme {manifest['scheme']}, but this key is for "
                               f"{cipher.name}")
    if manifest["params"] != cipher.key_params():
        diff = ", ".join(f"{k}: folder {manifest['params'].get(k)!r}, key {v!r}" for k, v in cipher.key_params().items()
                         if manifest["params"].get(k) != v)
        raise KeyMismatchError(f"{src} was encrypted with other {cipher.name} parameters ({diff})")
    size = manifest.get("image_size")
    mine = cipher.fingerprint_for(tuple(size) if size else None)
    if mine != manifest["fingerprint"]:
        raise KeyMismatchError(f"{src} was encrypted with the key of fingerprint {manifest['fingerprint']}; this key's "
                               f"fingerprint is {mine}. Use the key file written when the folder was encrypted")


def decrypt_folder(cipher: Cipher, src: Path, dst: Path, progress: bool = True, force: bool = False) -> Report:
    """Decrypt a folder written by `encrypt_folder`, after checking the key, the folder's
    completeness and every file's checksum against its manifest (`force` skips the checks)."""
    src, dst = Path(src), Path(dst)
    if not cipher.invertible:  # before anything is read or written
        raise NotInvertibleError(f"{cipher!r} cannot decrypt (docs/ciphers.md: schemes that are not invertible); "
                                 f"nothing was written to {dst}")
    _check_folders(src, dst)
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"output folder {dst} is not empty; refusing to overwrite")
    files = [p for p in list_images(src) if p.suffix.lower() == ".png"]
    if not files:
        raise InputError(f"no encrypted PNGs found under {src}")
    manifest = None if force else read_manifest(src)
    if not force:
        if manifest is None:
            raise InputError(f"{src} has no {MANIFEST}: it was not written by `leia encrypt` (or its manifest was "
                             f"removed), so nothing can check the key or the files; --force decrypts it anyway")
        if not manifest.get("complete"):
            raise InputError(f"{src} is incomplete: its encryption was interrupted. Run the same `leia encrypt` "
                             f"command again to finish it")
        _check_key(cipher, manifest, src)
        listed = manifest["files"]
        present = {p.relative_to(src).as_posix() for p in files}
        unlisted, missing = sorted(present - set(listed)), sorted(set(listed) - present)
        if unlisted or missing:
            raise InputError(f"{src} does not match its manifest: "
                             + "; ".join(part for part in (
                                 f"{len(unlisted)} file(s) not listed (renamed, moved or added: {', '.join(unlisted[:3])})"
                                 if unlisted else "",
                                 f"{len(missing)} listed file(s) missing ({', '.join(missing[:3])})" if missing else "")
                                 if part)
                             + ". Per-image keys follow file names, so a renamed file would decrypt to noise")
        for path in files:  # every checksum before anything is written
            if _sha(path) != listed[path.relative_to(src).as_posix()]:
                raise InputError(f"{path}: its checksum does not match the manifest (the file was altered after "
                                 f"encryption); --force decrypts it anyway")
    channels = cipher.cipher_shape(cipher.block_size, cipher.block_size)[0]
    entries = [Entry(p, p.relative_to(src).as_posix(), (0, 0)) for p in files]
    report = Report()
    dst.mkdir(parents=True, exist_ok=True)
    with locked(dst), tqdm(total=len(files), desc=f"decrypt ({cipher.name})", unit="img", disable=not progress) as bar:
        for group, y in _batches(entries, channels, report):
            ids = [image_id(src, e.path) for e in group] if cipher.needs_ids else None
            for entry, xi in zip(group, cipher.decrypt(y, ids=ids)):
                write_png(dst / entry.out, xi)
            report.images += len(group)
            bar.update(len(group))
    return report
