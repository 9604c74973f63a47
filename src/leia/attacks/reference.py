"""Per-pixel loop implementation of Chang & Case's greedy SKK decoder, written the way their MATLAB
code works (one pixel at a time). It is the oracle the batched decoder is tested against, and the
baseline of its speed benchmark; never used by the attacks themselves."""

from __future__ import annotations

import numpy as np

from ..ciphers.layout import COLOR_PERMS_INV


def pixel_candidates(pixel: np.ndarray, color_shuffle: bool = True) -> list[np.ndarray]:
    """The plain candidates of one encrypted pixel (3 values), in the order 8·order + pattern."""
    out = []
    for order in (COLOR_PERMS_INV if color_shuffle else [np.arange(3)]):
        for pattern in range(8):
            flips = np.array([(pattern >> c) & 1 for c in range(3)]) * 255
            out.append(pixel[order].astype(np.int64) ^ flips)
    return out


def greedy_decode_loop(y: np.ndarray, first: np.ndarray, color_shuffle: bool = True) -> np.ndarray:
    """y: one encrypted image [3, H, W] uint8; first: the plain first pixel [3]. Returns [3, H, W]."""
    _, h, w = y.shape
    out = np.zeros((3, h, w), dtype=np.int64)

    def nearest(r, c, ref):
        best, best_cost = None, None
        for cand in pixel_candidates(y[:, r, c], color_shuffle):
            cost = int(np.abs(cand - ref).sum())
            if best_cost is None or cost < best_cost:  # strict: the first candidate wins ties
                best, best_cost = cand, cost
        return best

    out[:, 0, 0] = nearest(0, 0, first.astype(np.int64))
    for r in range(h):
        for c in range(w):
            if r == 0 and c == 0:
                continue
            ref = out[:, 0, c - 1] if r == 0 else out[:, r - 1, c]
            out[:, r, c] = nearest(r, c, ref)
    return out.astype(np.uint8)


def chang_case_greedy(y: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Chang & Case's released decoder (decrypt_diffkey_adv.m) transcribed loop for loop: colour orders
    x = (y[p0], y[p1], y[p2]) for p in COLOR_PERMS order, patterns 0..7 with bit 2 flipping channel
    0, and a selection loop whose `break` leaves only the inner loop (the last tied order wins). The
    first pixel is set to `first` as given. y [3, H, W] uint8, first [3] -> [3, H, W] uint8."""
    from ..ciphers.layout import COLOR_PERMS

    _, h, w = y.shape
    dec = np.zeros((3, h, w), dtype=np.int64)
    dec[:, 0, 0] = first
    for r in range(h):
        for c in range(w):
            if r == 0 and c == 0:
                continue
            compare = dec[:, 0, c - 1] if r == 0 else dec[:, r - 1, c]
            table = np.zeros((6, 8, 3), dtype=np.int64)
            for row, p in enumerate(COLOR_PERMS):
                base = y[p, r, c].astype(np.int64)
                for t in range(8):
                    bits = ((t >> 2) & 1, (t >> 1) & 1, t & 1)
                    table[row, t] = [v ^ 255 if b else v for v, b in zip(base, bits)]
            diff = np.abs(table - compare).sum(-1)
            low = diff.min()
            for row in range(6):
                for t in range(8):
                    if diff[row, t] == low:
                        dec[:, r, c] = table[row, t]
                        break
    return dec.astype(np.uint8)


def chang_case_tanaka_bytes(helpers: np.ndarray, attacked: np.ndarray) -> np.ndarray:
    """Chang & Case's TanakaAttack/decrypt.m transcribed loop for loop (4×4 blocks): helpers [16, 4, 4, 3]
    are the encrypted helper images, attacked [H, W, 3] the encrypted image; returns its decryption."""
    helpers = helpers.astype(np.int64).copy()
    enc = attacked.astype(np.int64).copy()
    blocks = enc.shape[0] // 4
    for h in range(16):
        for i in range(4):
            for j in range(4):
                for rgb in range(3):
                    if helpers[h, i, j, rgb] > 127 and helpers[h, i, j, rgb] != 255:
                        helpers[h, i, j, rgb] = 255 - helpers[h, i, j, rgb]
                        for bi in range(blocks):
                            for bj in range(enc.shape[1] // 4):
                                enc[4 * bi + i, 4 * bj + j, rgb] = 255 - enc[4 * bi + i, 4 * bj + j, rgb]
    dec = enc.copy()
    for h in range(16):
        for value in (1, 2, 3):
            match = None
            for i in range(4):
                for j in range(4):
                    for rgb in range(3):
                        if helpers[h, i, j, rgb] == value:
                            match = (i, j, rgb)
            if match is not None:
                i, j, rgb = match
                spot_i, spot_j = divmod(h, 4)
                for bi in range(blocks):
                    for bj in range(enc.shape[1] // 4):
                        dec[4 * bi + spot_i, 4 * bj + spot_j, value - 1] = enc[4 * bi + i, 4 * bj + j, rgb]
    return dec.astype(np.uint8)
