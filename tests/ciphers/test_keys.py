"""Keys: derivation contract, determinism across processes, sources, key files, fingerprints,
secrecy of key material, and key-space sizes against anchors.md §4."""

import hashlib
import hmac
import json
import os
import stat
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from leia import ciphers
from leia.ciphers import keyfile
from leia.ciphers.keystream import KeyStream
from leia.errors import KeyMaterialError, KeyMismatchError, NotInvertibleError
from tests.helpers import CONFIGS, config_id, ids_for, make, random_images

# sha256 prefixes of each scheme's ciphertext of GOLDEN_INPUT with seed=0 and default parameters.
# They pin the key derivation: a change here means keys changed for every user.
GOLDEN = {
    "ele": "1e8abffb6a897c6cb9cb9378b305474f",
    "etc": "770d1cbeb85088ce57b0b8b24dfa2418",
    "plain": "ad5e367dd6956a08ec8b8aa433379b5b",
    "scramblemix": "6243faf363d4fabb74b92bafd32a0a0d",
    "skk": "a44a254ca51601cac693dd2ad2c21c01",
    "tanaka": "28e0a6607342fc2f325efac5f95feea0",
    "vit_block": "f4a2d577603b3112e515efe33eb9454f",
}
GOLDEN_SKK_PER_IMAGE = "6964d06365ec9f416d6699113f6c2b7f"


def golden_input():
    return (torch.arange(2 * 3 * 32 * 32) * 7 % 256).to(torch.uint8).reshape(2, 3, 32, 32)


def digest(y):
    return hashlib.sha256(y.contiguous().numpy().tobytes()).hexdigest()[:32]


KEYED = [c for c in CONFIGS if c[0] != "plain" and c[1].get("per_image_keys") != "random"]


# ------------------------------------------------------------------ the derivation contract
def test_stream_is_hmac_sha256_in_counter_mode_over_the_documented_label():
    label = b"leia-v1" + struct.pack(">I", 3) + b"etc" + struct.pack(">I", 2) + "é".encode()
    expected = b"".join(hmac.digest(b"secret", label + struct.pack(">Q", c), "sha256") for c in range(3))
    assert KeyStream(b"secret", "etc", "é").read(96) == expected
    s = KeyStream(b"secret", "etc", "é")
    assert s.read(10) + s.read(50) + s.read(36) == expected  # reads continue the stream


def test_golden_ciphertexts_pin_the_key_derivation():
    x = golden_input()
    for name in ciphers.names():
        c = ciphers.create(name, seed=0)
        assert digest(c.encrypt(x, ids=["a", "b"] if c.needs_ids else None)) == GOLDEN[name], name
    assert name in GOLDEN  # every registered scheme is pinned
    c = ciphers.create("skk", seed=0, key_mode="per_image")
    assert digest(c.encrypt(x, ids=["a", "b"])) == GOLDEN_SKK_PER_IMAGE


def test_every_registered_scheme_has_a_golden_value():
    assert sorted(GOLDEN) == ciphers.names()


def test_same_secret_gives_the_same_ciphertext_in_a_fresh_process():
    code = (
        "import hashlib, torch; from leia import ciphers\n"
        "x = (torch.arange(2*3*32*32) * 7 % 256).to(torch.uint8).reshape(2, 3, 32, 32)\n"
        "for n in ciphers.names():\n"
        "    c = ciphers.create(n, secret='shared secret')\n"
        "    y = c.encrypt(x, ids=['a', 'b'] if c.needs_ids else None)\n"
        "    print(n, hashlib.sha256(y.numpy().tobytes()).hexdigest())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    x = golden_input()
    for line in out.strip().splitlines():
        name, h = line.split()
        c = ciphers.create(name, secret="shared secret")
        assert hashlib.sha256(c.encrypt(x, ids=["a", "b"] if c.needs_ids else None).numpy().tobytes()).hexdigest() == h


@pytest.mark.parametrize("cfg", KEYED, ids=config_id)
def test_different_secrets_give_different_ciphertexts(cfg):
    name, params = cfg
    x = random_images((2,), 32, 32)
    a, b = make(name, params, seed=1), make(name, params, seed=2)
    ids = ids_for(a, 2)
    assert not torch.equal(a.encrypt(x, ids=ids), b.encrypt(x, ids=ids))
    size = (32, 32)
    assert a.fingerprint_for(size) != b.fingerprint_for(size)
    assert a.fingerprint_for(size) == make(name, params, seed=1).fingerprint_for(size)


@pytest.mark.parametrize("cfg", KEYED, ids=config_id)
def test_one_key_has_one_fingerprint_however_it_was_made(cfg, tmp_path):
    """A key from a secret and the same key loaded from its key file (or rebuilt from its
    components) have one fingerprint; a key for another image size is another key."""
    name, params = cfg
    c = make(name, params, seed=3)
    if not c.uses_secret:
        pytest.skip("throw-away keys are never stored")
    c.save_key(tmp_path / "k.json", image_size=(32, 32))
    loaded = ciphers.load(tmp_path / "k.json")
    assert loaded.fingerprint == c.fingerprint_for((32, 32)) == loaded.fingerprint_for((32, 32))
    assert ciphers.create(name, key=c.export_key((32, 32))).fingerprint == loaded.fingerprint
    if c.shape_dependent and not getattr(c, "per_image", False):
        assert c.fingerprint_for((64, 64)) != c.fingerprint_for((32, 32))
        with pytest.raises(KeyMaterialError, match="fingerprint_for"):
            c.fingerprint  # noqa: B018 (a secret-derived key needs the image size)


# ------------------------------------------------------------------ key sources
SECRET_HEX = "9f1c2e7a" * 8  # 256 bits as hex, as `leia keygen` writes


def test_secret_sources_agree(tmp_path, monkeypatch):
    x = random_images((2,), 16, 16)
    path = tmp_path / "secret"
    path.write_text(SECRET_HEX + "\n")
    path.chmod(0o600)
    by_str = ciphers.create("etc", secret=SECRET_HEX).encrypt(x)
    assert torch.equal(ciphers.create("etc", secret=SECRET_HEX.encode()).encrypt(x), by_str)
    assert torch.equal(ciphers.create("etc", secret_file=str(path)).encrypt(x), by_str)
    monkeypatch.setenv("LEIA_SECRET", SECRET_HEX)
    assert torch.equal(ciphers.create("etc").encrypt(x), by_str)
    # an explicit seed wins over the environment
    assert torch.equal(ciphers.create("etc", seed=4).encrypt(x), ciphers.create("etc", seed=4, block_size=4).encrypt(x))


def test_weak_secrets_from_the_environment_or_a_file_are_refused(tmp_path, monkeypatch):
    for weak, why in (("ab", "2 hex digits"), ("correct horse battery staple", "not hex"), ("f" * 31, "31 hex digits")):
        monkeypatch.setenv("LEIA_SECRET", weak)
        with pytest.raises(KeyMaterialError, match=f"too weak \\({why}\\).*leia keygen") as e:
            ciphers.create("etc")
        assert weak not in str(e.value)
        (tmp_path / "s").write_text(weak)
        (tmp_path / "s").chmod(0o600)
        with pytest.raises(KeyMaterialError, match="too weak"):
            ciphers.create("etc", secret_file=str(tmp_path / "s"))
    monkeypatch.setenv("LEIA_SECRET", "F" * 32)
    assert ciphers.create("etc").fingerprint_for((8, 8))  # 128 bits of hex is enough


def test_key_and_secret_files_readable_by_others_are_named(tmp_path):
    ciphers.create("tanaka", seed=1).save_key(tmp_path / "k.json")
    secret = ciphers.write_secret_file(tmp_path / "s")
    for path, load in ((tmp_path / "k.json", lambda p: ciphers.load(p)),
                       (secret, lambda p: ciphers.create("tanaka", secret_file=str(p)))):
        load(path)  # owner-only as written: quiet
        path.chmod(0o644)
        with pytest.warns(UserWarning, match=f"{path} is readable by other users \\(mode 644\\); restrict it"):
            load(path)


def test_missing_key_source_names_the_options(monkeypatch):
    monkeypatch.delenv("LEIA_SECRET", raising=False)
    with pytest.raises(KeyMaterialError, match="LEIA_SECRET"):
        ciphers.create("tanaka")
    with pytest.raises(KeyMaterialError, match="one key source"):
        ciphers.create("tanaka", seed=1, secret="x")
    with pytest.raises(KeyMaterialError, match="does not exist"):
        ciphers.create("tanaka", secret_file="/nonexistent/secret")
    assert ciphers.create("plain").fingerprint == "none"  # plain needs no key


def test_keygen_writes_an_owner_only_secret_and_never_overwrites(tmp_path):
    path = ciphers.write_secret_file(tmp_path / "leia.secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(bytes.fromhex(path.read_text().strip())) == 32
    with pytest.raises(FileExistsError):
        ciphers.write_secret_file(path)


# ------------------------------------------------------------------ key files
@pytest.mark.parametrize("cfg", KEYED, ids=config_id)
def test_key_file_roundtrip(cfg, tmp_path):
    name, params = cfg
    c = make(name, params, seed=5)
    m = c.block_size
    h, w = (2 * m, 3 * m)
    c.save_key(tmp_path / "k.json", image_size=(h, w))
    assert stat.S_IMODE(os.stat(tmp_path / "k.json").st_mode) == 0o600
    json.loads((tmp_path / "k.json").read_text())  # JSON, never pickle
    loaded = ciphers.load(tmp_path / "k.json")
    assert type(loaded) is type(c) and loaded.config() == c.config()
    x = random_images((2,), h, w)
    ids = ids_for(c, 2)
    assert torch.equal(loaded.encrypt(x, ids=ids), c.encrypt(x, ids=ids))
    with pytest.raises(FileExistsError):
        c.save_key(tmp_path / "k.json", image_size=(h, w))


def test_key_for_another_scheme_size_or_parameters_is_refused(tmp_path):
    ciphers.create("etc", seed=0).save_key(tmp_path / "etc.key", image_size=(32, 32))
    with pytest.raises(KeyMismatchError, match="scheme 'etc', not 'tanaka'"):
        ciphers.create("tanaka", key_file=str(tmp_path / "etc.key"))
    c = ciphers.load(tmp_path / "etc.key")
    with pytest.raises(KeyMismatchError, match="made for 32x32 images, got 64x64"):
        c.encrypt(random_images((1,), 64, 64))
    with pytest.raises(KeyMismatchError, match="block_size=4"):
        ciphers.create("etc", key_file=str(tmp_path / "etc.key"), block_size=8)
    with pytest.raises(KeyMaterialError, match="not both"):
        ciphers.create("etc", key_file=str(tmp_path / "etc.key"), seed=1)


def test_tampered_or_foreign_key_files_are_refused(tmp_path):
    ciphers.create("tanaka", seed=0).save_key(tmp_path / "k.json")
    body = json.loads((tmp_path / "k.json").read_text())
    body["params"]["block_size"] = 2
    (tmp_path / "bad.json").write_text(json.dumps(body))
    with pytest.raises(KeyMaterialError, match="checksum mismatch"):
        ciphers.load(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_bytes(b"\x80\x04 not a key")
    with pytest.raises(KeyMaterialError, match="not a leia key file"):
        ciphers.load(tmp_path / "junk.json")
    with pytest.raises(KeyMaterialError, match="does not exist"):
        ciphers.load(tmp_path / "missing.json")


def test_explicit_key_material_is_validated():
    with pytest.raises(KeyMismatchError, match="permutations of 0..95"):
        ciphers.create("tanaka", permutation=list(range(95)) + [0])
    with pytest.raises(KeyMismatchError, match="flip=derived must not carry"):
        ciphers.create("tanaka", permutation=list(range(96)), flip_mask=[0] * 96, flip="derived")
    c = ciphers.create("tanaka", permutation=list(range(96)), flip_mask=[1] * 96)
    assert c.params.flip == "independent"


def test_per_image_key_file_holds_the_secret_and_throwaway_keys_cannot_be_saved(tmp_path):
    c = ciphers.create("skk", seed=3, key_mode="per_image")
    c.save_key(tmp_path / "skk.key")
    loaded = ciphers.load(tmp_path / "skk.key")
    x = random_images((3,), 8, 8)
    assert torch.equal(loaded.encrypt(x, ids=[1, 2, 3]), c.encrypt(x, ids=[1, 2, 3]))
    with pytest.raises(NotInvertibleError, match="throw-away"):
        ciphers.create("skk", key_mode="per_image", per_image_keys="random").save_key(tmp_path / "r.key")


# ------------------------------------------------------------------ secrecy
def test_reprs_and_errors_never_show_key_material(tmp_path):
    secret = "hunter2-very-secret-value"
    c = ciphers.create("tanaka", secret=secret)
    p = c.components(8, 8)["P"]
    key = c.export_key()
    texts = [repr(c), str(c), repr(key), str(c.describe()), repr(c._secret), repr(ciphers.BatchCipher(c)),
             repr(ciphers.CipherTransform(c))]
    for text in texts:
        assert secret not in text
        assert str(p.tolist())[1:40] not in text
        assert c.fingerprint in text or "redacted" in text or "fingerprint" in text
    try:
        ciphers.create("tanaka", permutation=list(p[:-1]) + [p[0]])
    except KeyMismatchError as e:
        assert str(p.tolist())[1:20] not in str(e)


def test_fingerprint_is_short_hex_slow_and_not_the_secret():
    c = ciphers.create("etc", secret="abc")
    fp = c.fingerprint_for((32, 32))
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp != ciphers.create("etc", secret="abc", block_size=8).fingerprint_for((32, 32))
    # deliberately slow: scrypt of the key's canonical body, not a plain hash anyone can test keys against
    key = c.export_key((32, 32))
    body = hashlib.sha256(keyfile._canonical(key._body())).digest()
    assert fp == hashlib.scrypt(body, salt=keyfile.FINGERPRINT_SALT, n=2**14, r=8, p=1, dklen=8).hex()
    assert fp not in (hashlib.sha256(body).hexdigest()[:16], body.hex()[:16])


# ------------------------------------------------------------------ key spaces (anchors.md §4)
@pytest.mark.parametrize(
    "name,params,size,bits",
    [
        ("tanaka", {"flip": "independent"}, (32, 32), 594),
        ("tanaka", {}, (32, 32), 498),
        ("ele", {"flip": "independent"}, (32, 32), 38330),
        ("etc", {}, (32, 32), 717),
        ("skk", {"key_mode": "per_image"}, (32, 32), 5719),
        ("vit_block", {"block_size": 16}, (224, 224), 7474),
    ],
)
def test_key_space_matches_anchors(name, params, size, bits):
    c = ciphers.create(name, seed=0, **params)
    assert abs(c.key_space_bits(size) - bits) < 1.0


def test_every_scheme_reports_its_key_space():
    for name, params in CONFIGS:
        c = make(name, params)
        value = c.key_space_bits((32, 32))
        assert isinstance(value, float) and np.isfinite(value) and (value > 0) == (name != "plain")
