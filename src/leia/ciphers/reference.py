"""Straightforward per-image numpy implementations of every scheme, written the way public code
is: loops over images and blocks on HWC arrays, following schemes.md step by step.

Two uses, never the library's own path: an independent oracle that the compiled gather kernels
must match bit for bit (tests), and the per-image baseline of bench/ciphers.py. They take key
components from `Cipher.components()` so that both sides encrypt under the same key.
"""

from __future__ import annotations

import numpy as np

from .layout import COLOR_PERMS


def _blocks(h: int, w: int, m: int):
    for by in range(h // m):
        for bx in range(w // m):
            yield by * m, bx * m


def le_block(block: np.ndarray, p: np.ndarray, f: np.ndarray) -> np.ndarray:
    """LE on one flattened block of d bytes: nibbles, flip, permute, flip, bytes."""
    d = block.size
    v = np.concatenate([block & 15, block >> 4])
    v = v ^ (15 * f)
    v = v[p]
    v = v ^ (15 * f)
    return ((v[d:] << 4) | v[:d]).astype(np.uint8)


def tanaka(img: np.ndarray, p: np.ndarray, f: np.ndarray, m: int, decrypt: bool = False) -> np.ndarray:
    h, w, _ = img.shape
    p = np.argsort(p) if decrypt else p
    out = np.empty_like(img)
    for y, x in _blocks(h, w, m):
        block = img[y : y + m, x : x + m, :].reshape(-1)
        out[y : y + m, x : x + m, :] = le_block(block, p, f).reshape(m, m, 3)
    return out


def ele(img: np.ndarray, p: np.ndarray, f: np.ndarray, q: np.ndarray, m: int, decrypt: bool = False) -> np.ndarray:
    h, w, _ = img.shape
    coords = list(_blocks(h, w, m))
    out = np.empty_like(img)
    if not decrypt:
        scrambled = [le_block(img[y : y + m, x : x + m, :].reshape(-1), p[b], f[b]) for b, (y, x) in enumerate(coords)]
        for i, (y, x) in enumerate(coords):
            out[y : y + m, x : x + m, :] = scrambled[q[i]].reshape(m, m, 3)
        return out
    for i, (y, x) in enumerate(coords):
        b = q[i]
        by, bx = coords[b]
        block = img[y : y + m, x : x + m, :].reshape(-1)
        out[by : by + m, bx : bx + m, :] = le_block(block, np.argsort(p[b]), f[b]).reshape(m, m, 3)
    return out


def skk(img: np.ndarray, np_bits: np.ndarray, color: np.ndarray | None, decrypt: bool = False) -> np.ndarray:
    mask = (255 * np_bits).astype(np.uint8)
    if color is None:
        return img ^ mask
    perms = COLOR_PERMS[color.astype(np.int64)]  # [H, W, 3]
    if not decrypt:
        return np.take_along_axis(img ^ mask, perms, axis=2)
    out = np.empty_like(img)
    np.put_along_axis(out, perms, img, axis=2)
    return out ^ mask


def skk_inplace_loop(img: np.ndarray, pixel_reverse: np.ndarray, channel_shuffle: np.ndarray) -> np.ndarray:
    """ScrambleMix's pixel encryption as its code runs (scripts/scramblemix/pixel_based_encryption.py
    of MADONOKOUKI/psivt23_scramblemix): NP where `pixel_reverse` is 0 (a 1 keeps the byte), then
    each of the six colour orders applied to a copy by assigning the channels in place on numpy
    views, then per pixel the copy its code selects. HWC uint8 in, HWC uint8 out (their float64
    array holds the same integers)."""
    img = img.astype(np.int64)
    img = img * pixel_reverse + (255 - img) * (1 - pixel_reverse)
    imgs = []
    for perm in COLOR_PERMS:
        img0 = img.copy()
        img0[:, :, 0], img0[:, :, 1], img0[:, :, 2] = img0[:, :, perm[0]], img0[:, :, perm[1]], img0[:, :, perm[2]]
        imgs.append(img0)
    val = np.zeros(img.shape)
    for i in range(6):
        for j in range(3):
            val[:, :, j] = val[:, :, j] + imgs[i][:, :, j] * (channel_shuffle == i)
    return val.astype(np.uint8)


def _dihedral(block: np.ndarray, code: int) -> np.ndarray:
    out = np.rot90(block, k=code % 4)
    return out[:, ::-1] if code >= 4 else out


def _dihedral_inverse(block: np.ndarray, code: int) -> np.ndarray:
    out = block[:, ::-1] if code >= 4 else block
    return np.rot90(out, k=-(code % 4))


def inplace_color(block: np.ndarray, perm) -> np.ndarray:
    """The legacy code's channel assignment on numpy views, reproduced literally."""
    out = block.copy()
    views = (out[:, :, perm[0]], out[:, :, perm[1]], out[:, :, perm[2]])
    out[:, :, 0], out[:, :, 1], out[:, :, 2] = views
    return out


def etc(img, block_perm, dihedral, np_bits, color, m: int, legacy: bool = False, decrypt: bool = False):
    """Colour EtC on [H, W, 3], or grayscale EtC on a [H, 3W, 1] plane image (color=None)."""
    h, w, _ = img.shape
    coords = list(_blocks(h, w, m))
    out = np.empty_like(img)
    for i, (y, x) in enumerate(coords):
        sy, sx = coords[block_perm[i]]
        if not decrypt:
            block = _dihedral(img[sy : sy + m, sx : sx + m, :], int(dihedral[i]))
            if np_bits[i]:
                block = 255 - block
            if color is not None:
                block = inplace_color(block, COLOR_PERMS[color[i]]) if legacy else block[:, :, COLOR_PERMS[color[i]]]
            out[y : y + m, x : x + m, :] = block
        else:
            block = img[y : y + m, x : x + m, :]
            if color is not None:
                block = block[:, :, np.argsort(COLOR_PERMS[color[i]])]
            if np_bits[i]:
                block = 255 - block
            out[sy : sy + m, sx : sx + m, :] = _dihedral_inverse(block, int(dihedral[i]))
    return out


def vit_block(img, block_perm, pixel_perm, np_bits, m: int, decrypt: bool = False):
    h, w, _ = img.shape
    coords = list(_blocks(h, w, m))
    mask = np.zeros(3 * m * m, np.uint8) if np_bits is None else (255 * np_bits).astype(np.uint8)
    out = np.empty_like(img)
    inv = np.argsort(pixel_perm)
    for i, (y, x) in enumerate(coords):
        sy, sx = coords[block_perm[i]]
        if not decrypt:
            v = img[sy : sy + m, sx : sx + m, :].reshape(-1)[pixel_perm] ^ mask
            out[y : y + m, x : x + m, :] = v.reshape(m, m, 3)
        else:
            v = (img[y : y + m, x : x + m, :].reshape(-1) ^ mask)[inv]
            out[sy : sy + m, sx : sx + m, :] = v.reshape(m, m, 3)
    return out


def rgb_to_ycbcr(img: np.ndarray) -> np.ndarray:
    """libjpeg's jccolor.c arithmetic on an HWC uint8 array."""
    r, g, b = (img[..., i].astype(np.int64) for i in range(3))
    y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16
    cb = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32767) >> 16
    cr = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32767) >> 16
    return np.stack([y, cb, cr], axis=-1).astype(np.uint8)


def _ref_plain(cipher, img, image_id, decrypt):
    return img.copy()


def _ref_skk(cipher, img, image_id, decrypt):
    h, w = img.shape[:2]
    if cipher.per_image:
        np_bits, color = cipher.per_image_components(h, w, [str(image_id)])
        np_bits, color = np_bits[0], None if color is None else color[0]
    else:
        comps = cipher.components(h, w)
        np_bits, color = comps["np"], comps.get("color")
    if cipher.legacy:  # their key bit 1 keeps a byte, leia's NP bit 1 flips it
        if decrypt:
            raise ValueError("skk color_shuffle=legacy_inplace duplicates channels; nothing decrypts it")
        return skk_inplace_loop(img, 1 - np_bits.astype(np.int64), color)
    return skk(img, np_bits, color, decrypt)


def _ref_tanaka(cipher, img, image_id, decrypt):
    comps = cipher.components(*img.shape[:2])
    return tanaka(img, comps["P"], cipher.flip_mask(comps), cipher.block_size, decrypt)


def _ref_ele(cipher, img, image_id, decrypt):
    comps = cipher.components(*img.shape[:2])
    p = comps["P"]
    f = comps["F"] if cipher.params.flip == "independent" else (p > p.shape[1] // 2).astype(np.uint8)
    return ele(img, p, f, comps["Q"], cipher.block_size, decrypt)


def _ref_vit_block(cipher, img, image_id, decrypt):
    comps = cipher.components(*img.shape[:2])
    n = (img.shape[0] // cipher.block_size) * (img.shape[1] // cipher.block_size)
    block_perm = comps.get("block_perm", np.arange(n))  # scramble=false keeps block positions
    return vit_block(img, block_perm, comps["pixel_perm"], comps.get("np"), cipher.block_size, decrypt)


def _ref_etc(cipher, img, image_id, decrypt):
    """Grayscale: encrypts RGB [H, W, 3] to planes [H, 3W, 1]; decrypts back to the YCbCr planes."""
    gray = cipher.params.grayscale
    h, w = (img.shape[0], img.shape[1] // 3) if gray and decrypt else img.shape[:2]
    comps = cipher.components(h, w)
    args = (comps["block_perm"], comps["dihedral"], comps["np"])
    if gray:
        planes = img if decrypt else np.concatenate(np.split(rgb_to_ycbcr(img), 3, axis=2), axis=1)
        return etc(planes, *args, None, cipher.block_size, decrypt=decrypt)
    legacy = cipher.params.color_shuffle == "legacy_inplace"
    return etc(img, *args, comps["color"], cipher.block_size, legacy, decrypt)


def _ref_scramblemix(cipher, img, image_id, decrypt):
    """View 0: the two scrambles of its pair (numpy skk above), blended with the 16-bit weight."""
    if decrypt:
        raise ValueError("scramblemix blends two scrambles; a view cannot be decrypted")
    h, w = img.shape[:2]
    comps = cipher.components(h, w)
    (pair,), (weight,) = (a[0] for a in cipher.view_parameters([str(image_id)], [0], h, w))
    legacy, scrambles = cipher.params.color_shuffle == "legacy_inplace", []
    for member in (2 * pair, 2 * pair + 1):
        np_bits, color = comps["np"][member], comps["color"][member] if "color" in comps else None
        scrambles.append(skk_inplace_loop(img, 1 - np_bits.astype(np.int64), color) if legacy
                         else skk(img, np_bits, color))
    a, b = (x.astype(np.int64) for x in scrambles)
    return (((65536 - int(weight)) * a + int(weight) * b + 32768) >> 16).astype(np.uint8)


REFERENCES = {
    "scramblemix": _ref_scramblemix,
    "plain": _ref_plain,
    "tanaka": _ref_tanaka,
    "ele": _ref_ele,
    "skk": _ref_skk,
    "etc": _ref_etc,
    "vit_block": _ref_vit_block,
}


def encrypt_image(cipher, img: np.ndarray, image_id=None, decrypt: bool = False) -> np.ndarray:
    """Encrypt (or decrypt) one HWC uint8 image with `cipher`'s key, the per-image numpy way."""
    if cipher.name not in REFERENCES:
        raise ValueError(f"no per-image reference for scheme {cipher.name!r}; add one to REFERENCES")
    return REFERENCES[cipher.name](cipher, img, image_id, decrypt)
