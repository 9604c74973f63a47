"""The `leia` command: the data owner's folder tool, keygen, scheme listing, and the gallery."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from leia import ciphers
from leia.cli import main
from tests.helpers import random_images


def write_folder(root, n=5, size=(16, 16), mode="RGB"):
    """A small image-folder tree with JPEG and PNG files, like a dataset."""
    imgs = {}
    for i in range(n):
        x = random_images((), *size, seed=i)
        rel = f"train/{'cat' if i % 2 else 'dog'}/{i:04d}"
        path = root / (rel + (".jpg" if i % 2 else ".png"))
        path.parent.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(x.permute(1, 2, 0).numpy())
        im.convert(mode).save(path, quality=95) if mode != "RGB" else im.save(path, quality=95)
        with Image.open(path) as back:
            imgs[rel] = np.array(back.convert("RGB"))  # what the tool reads (JPEG is lossy on write)
    return imgs


def read_tree(root):
    return {p.relative_to(root).with_suffix("").as_posix(): np.array(Image.open(p))
            for p in sorted(root.rglob("*.png"))}


@pytest.mark.parametrize(
    "scheme,params",
    [("etc", ["block_size=4"]), ("tanaka", []), ("skk", ["key_mode=per_image"]), ("etc", ["grayscale=true"]),
     ("vit_block", ["block_size=8", "np=true"]), ("ele", [])],
)
def test_encrypt_then_decrypt_a_folder(tmp_path, scheme, params):
    plain = write_folder(tmp_path / "data")
    args = ["encrypt", str(tmp_path / "data"), str(tmp_path / "enc"), "--scheme", scheme, "--seed", "4",
            "--key-out", str(tmp_path / "keys" / "owner.key"), "--quiet"]
    for p in params:
        args += ["-p", p]
    assert main(args) == 0
    enc = read_tree(tmp_path / "enc")
    assert sorted(enc) == sorted(plain)
    manifest = json.loads((tmp_path / "enc" / "leia-encryption.json").read_text())
    assert manifest["scheme"] == scheme and manifest["images"] == 5
    # the shared folder holds ciphertexts exactly as the library produces them, and no key
    cipher = ciphers.load(tmp_path / "keys" / "owner.key")
    assert manifest["fingerprint"] == cipher.fingerprint  # one key, one fingerprint: manifest and key file agree
    for rel, img in plain.items():
        x = torch.from_numpy(img).permute(2, 0, 1)
        y = cipher.encrypt(x, ids=rel if cipher.needs_ids else None)
        got = torch.from_numpy(enc[rel])
        got = got[None] if got.ndim == 2 else got.permute(2, 0, 1)
        assert torch.equal(got, y), rel
    key_bytes = (tmp_path / "keys" / "owner.key").read_bytes()
    assert all(key_bytes not in p.read_bytes() for p in (tmp_path / "enc").rglob("*") if p.is_file())
    assert main(["decrypt", str(tmp_path / "enc"), str(tmp_path / "dec"), "--key-file",
                 str(tmp_path / "keys" / "owner.key"), "--quiet"]) == 0
    dec = read_tree(tmp_path / "dec")
    for rel, img in plain.items():
        if "grayscale=true" in params:
            assert np.abs(dec[rel].astype(int) - img.astype(int)).max() <= 3  # YCbCr rounding only
        else:
            assert np.array_equal(dec[rel], img), rel


def test_folder_tool_refuses_to_overwrite_or_leak_the_key(tmp_path, capsys):
    write_folder(tmp_path / "data", n=2)
    base = ["encrypt", str(tmp_path / "data"), str(tmp_path / "enc"), "--scheme", "etc", "--seed", "1", "--quiet"]
    assert main(base + ["--key-out", str(tmp_path / "enc" / "k.key")]) == 2
    assert "must not be written inside the shared folder" in capsys.readouterr().err
    assert main(base) == 2
    assert "give --key-out" in capsys.readouterr().err
    assert main(base + ["--key-out", str(tmp_path / "k.key")]) == 0
    assert main(base + ["--key-out", str(tmp_path / "k2.key")]) == 2
    assert "already holds a complete encrypted folder; refusing to overwrite" in capsys.readouterr().err
    (tmp_path / "enc2").mkdir()
    base[2] = str(tmp_path / "enc2")
    assert main(base + ["--key-out", str(tmp_path / "k.key")]) == 2
    assert "refusing to overwrite a key file" in capsys.readouterr().err


def encrypt(src, dst, key, *extra):
    return main(["encrypt", str(src), str(dst), "--scheme", "etc", "--seed", "1", "--key-out", str(key), "--quiet",
                 *extra])


def decrypt(src, dst, key, *extra):
    return main(["decrypt", str(src), str(dst), "--key-file", str(key), "--quiet", *extra])


def test_a_scramblemix_folder_holds_view_0_and_is_refused_by_decrypt_before_anything_is_written(tmp_path, capsys):
    plain = write_folder(tmp_path / "data", n=3)
    key = tmp_path / "keys" / "owner.key"
    assert main(["encrypt", str(tmp_path / "data"), str(tmp_path / "enc"), "--scheme", "scramblemix", "--seed", "4",
                 "--key-out", str(key), "-p", "views=2", "--quiet"]) == 0
    cipher = ciphers.load(key)
    assert json.loads(key.read_text())["params"] == {"pairs": 4, "alpha": 0.005, "color_shuffle": True}
    for rel, img in plain.items():  # view 0 of each image, keyed by its relative path
        x = torch.from_numpy(img).permute(2, 0, 1)
        assert torch.equal(torch.from_numpy(read_tree(tmp_path / "enc")[rel]).permute(2, 0, 1),
                           cipher.encrypt(x, ids=rel))
    assert main(["decrypt", str(tmp_path / "enc"), str(tmp_path / "back"), "--key-file", str(key)]) == 2
    assert "cannot decrypt" in capsys.readouterr().err and not (tmp_path / "back").exists()


def test_decrypt_checks_the_key_and_the_files_against_the_manifest(tmp_path, capsys):
    write_folder(tmp_path / "data", n=3)
    assert encrypt(tmp_path / "data", tmp_path / "enc", tmp_path / "k.key") == 0
    manifest = json.loads((tmp_path / "enc" / "leia-encryption.json").read_text())
    assert manifest["complete"] and sorted(manifest["files"]) == sorted(
        p.relative_to(tmp_path / "enc").as_posix() for p in (tmp_path / "enc").rglob("*.png"))
    wrong = {"seed": ciphers.create("etc", seed=2), "scheme": ciphers.create("tanaka", seed=1),
             "parameters": ciphers.create("etc", seed=1, grayscale=True)}
    for what, other in wrong.items():
        other.save_key(tmp_path / f"{what}.key", image_size=(16, 16))
        assert decrypt(tmp_path / "enc", tmp_path / f"dec-{what}", tmp_path / f"{what}.key") == 2
        err = capsys.readouterr().err
        assert {"seed": "fingerprint", "scheme": "scheme etc", "parameters": "grayscale"}[what] in err, err
        assert not (tmp_path / f"dec-{what}").exists() or not any((tmp_path / f"dec-{what}").iterdir())
    # an altered file, a renamed one, and a folder without its manifest
    enc = tmp_path / "enc"
    first = sorted(manifest["files"])[0]
    original = (enc / first).read_bytes()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(enc / first)
    assert decrypt(enc, tmp_path / "d1", tmp_path / "k.key") == 2
    assert f"{enc / first}: its checksum does not match" in capsys.readouterr().err
    (enc / first).write_bytes(original)
    (enc / first).rename(enc / "renamed.png")
    assert decrypt(enc, tmp_path / "d2", tmp_path / "k.key") == 2
    err = capsys.readouterr().err
    assert "not listed (renamed, moved or added: renamed.png)" in err and f"missing ({first})" in err
    (enc / "renamed.png").rename(enc / first)
    (enc / "leia-encryption.json").unlink()
    assert decrypt(enc, tmp_path / "d3", tmp_path / "k.key") == 2
    assert "has no leia-encryption.json" in capsys.readouterr().err
    assert decrypt(enc, tmp_path / "d4", tmp_path / "k.key", "--force") == 0


def test_an_interrupted_encryption_is_marked_incomplete_and_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    from leia import folder_crypt

    write_folder(tmp_path / "data", n=5)
    monkeypatch.setattr(folder_crypt, "BATCH", 2)
    real, calls = folder_crypt.write_png, []

    def dies_on_the_third(path, x):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("No space left on device")
        return real(path, x)

    monkeypatch.setattr(folder_crypt, "write_png", dies_on_the_third)
    assert encrypt(tmp_path / "data", tmp_path / "enc", tmp_path / "k.key") == 2
    assert "No space left on device" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "enc" / "leia-encryption.json").read_text())
    assert not manifest["complete"] and len(manifest["files"]) == 2
    assert not (tmp_path / "k.key").exists()  # the key file is written last
    assert not list((tmp_path / "enc").rglob("*.tmp"))  # no truncated file
    assert decrypt(tmp_path / "enc", tmp_path / "dec", tmp_path / "k.key") == 2  # no key yet, and incomplete
    monkeypatch.setattr(folder_crypt, "write_png", real)
    ciphers.create("etc", seed=1).save_key(tmp_path / "early.key", image_size=(16, 16))
    assert decrypt(tmp_path / "enc", tmp_path / "dec", tmp_path / "early.key") == 2
    assert "is incomplete" in capsys.readouterr().err
    # between the two runs, one source image already encrypted changes, and a killed write left a temporary file
    done = sorted(manifest["files"])[0]
    changed = next(p for p in (tmp_path / "data").rglob("*") if p.is_file() and
                   p.relative_to(tmp_path / "data").with_suffix(".png").as_posix() == done)
    Image.fromarray(np.full((16, 16, 3), 77, np.uint8)).save(changed, quality=100)
    (tmp_path / "enc" / ".stray.png.123.tmp").write_bytes(b"half")
    assert encrypt(tmp_path / "data", tmp_path / "enc", tmp_path / "k.key") == 0  # the same command
    assert "(1 of them written by an interrupted run, verified)" in capsys.readouterr().out  # the changed one redone
    assert not list((tmp_path / "enc").rglob("*.tmp"))
    assert decrypt(tmp_path / "enc", tmp_path / "dec", tmp_path / "k.key") == 0
    # another job into that folder is refused, not mixed in
    assert encrypt(tmp_path / "data", tmp_path / "enc", tmp_path / "k3.key") == 2


def test_inputs_are_checked_before_anything_is_written(tmp_path, capsys):
    from leia import folder_crypt

    write_folder(tmp_path / "clash", n=2)
    Image.open(next((tmp_path / "clash").rglob("*.png"))).save(next((tmp_path / "clash").rglob("*.png")).with_suffix(".jpg"))
    assert encrypt(tmp_path / "clash", tmp_path / "enc1", tmp_path / "k1.key") == 2
    assert "would be written twice" in capsys.readouterr().err
    write_folder(tmp_path / "tiff", n=1)
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 99)]
    frames[0].save(tmp_path / "tiff" / "stack.tif", save_all=True, append_images=frames[1:])
    assert encrypt(tmp_path / "tiff", tmp_path / "enc2", tmp_path / "k2.key") == 2
    assert f"{tmp_path / 'tiff' / 'stack.tif'}: holds 2 frames" in capsys.readouterr().err
    write_folder(tmp_path / "text", n=1)
    (tmp_path / "text" / "notes.png").write_text("not an image")
    assert encrypt(tmp_path / "text", tmp_path / "enc3", tmp_path / "k3.key") == 2
    assert f"{tmp_path / 'text' / 'notes.png'}: not a readable image" in capsys.readouterr().err
    for i in (1, 2, 3):
        assert not (tmp_path / f"k{i}.key").exists()
        assert not (tmp_path / f"enc{i}").exists() or not any((tmp_path / f"enc{i}").iterdir())
    write_folder(tmp_path / "data", n=1)
    (tmp_path / "busy").mkdir()
    with folder_crypt.locked(tmp_path / "busy"):
        assert encrypt(tmp_path / "data", tmp_path / "busy", tmp_path / "k4.key") == 2
    assert "being written by another leia process" in capsys.readouterr().err


def test_folder_of_mixed_sizes_is_refused_for_size_dependent_keys(tmp_path, capsys):
    write_folder(tmp_path / "data", n=2, size=(16, 16))
    write_folder(tmp_path / "data" / "more", n=1, size=(32, 32))
    assert main(["encrypt", str(tmp_path / "data"), str(tmp_path / "enc"), "--scheme", "etc", "--seed", "1",
                 "--key-out", str(tmp_path / "k.key"), "--quiet"]) == 2
    assert "keys depend on the image size" in capsys.readouterr().err


def test_grayscale_images_expand_losslessly_and_rgba_is_refused(tmp_path, capsys):
    write_folder(tmp_path / "gray", n=2, mode="L")
    assert main(["encrypt", str(tmp_path / "gray"), str(tmp_path / "enc"), "--scheme", "tanaka", "--seed", "1",
                 "--key-out", str(tmp_path / "k.key"), "--quiet"]) == 0
    assert "expanded to RGB" in capsys.readouterr().out
    write_folder(tmp_path / "rgba", n=1, mode="RGBA")
    (tmp_path / "rgba" / "train" / "dog" / "0000.png").rename(tmp_path / "rgba" / "x.png")
    assert main(["encrypt", str(tmp_path / "rgba"), str(tmp_path / "enc2"), "--scheme", "tanaka", "--seed", "1",
                 "--key-out", str(tmp_path / "k2.key"), "--quiet"]) == 2
    assert "mode RGBA would lose information" in capsys.readouterr().err


def test_keygen_schemes_and_errors(tmp_path, capsys):
    assert main(["keygen", str(tmp_path / "s")]) == 0
    secret = (tmp_path / "s").read_text().strip()
    assert secret not in capsys.readouterr().out  # the secret itself is never printed
    assert main(["schemes"]) == 0
    out = capsys.readouterr().out
    for name in ciphers.names():
        assert name in out
    assert "717.4" in out and "5719.0" in out  # etc and skk key spaces at 32x32
    assert main(["encrypt", str(tmp_path / "nope"), str(tmp_path / "o"), "--scheme", "etc", "--seed", "0",
                 "--key-out", str(tmp_path / "k")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["schemes", "--image-size", "0", "0"]) == 2
    assert "positive height and width" in capsys.readouterr().err
    assert main(["keygen", "/proc/no-such-folder/s"]) == 2
    assert "/proc/no-such-folder" in capsys.readouterr().err
    assert main(["encrypt", str(tmp_path), str(tmp_path / "o"), "--scheme", "etc", "--seed", "0",
                 "-p", "block_size=!!python/object:os.system"]) == 2
    assert "parameter block_size: '!!python/object:os.system' is not a plain value" in capsys.readouterr().err


def test_gallery_renders_every_scheme(tmp_path):
    from leia.gallery import GALLERY

    assert {name for _, name, _ in GALLERY} == set(ciphers.names())
    out = tmp_path / "g.png"
    assert main(["gallery", "--out", str(out), "--size", "64"]) == 0
    first = hashlib.sha256(out.read_bytes()).hexdigest()
    with Image.open(out) as im:
        assert im.width > 600 and im.height > 500
    out.unlink()
    assert main(["gallery", "--out", str(out), "--size", "64"]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == first  # deterministic figure
