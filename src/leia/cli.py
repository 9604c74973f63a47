"""`leia` command: small tools around the cipher library (training and attacks are Hydra entry
points: train.py and attack.py).

    leia schemes                          registered schemes, parameters, key spaces
    leia keygen PATH                      a fresh 32-byte secret, owner-readable only
    leia encrypt SRC DST --scheme etc -p block_size=4 --key-out KEY   (data owner's tool)
    leia decrypt SRC DST --key-file KEY
    leia gallery --out docs/gallery.png   every scheme on one image, and its decryption
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from . import ciphers
from .errors import LeiaError


def parse_params(items: list[str]) -> dict:
    params = {}
    for item in items or []:
        if "=" not in item:
            raise LeiaError(f"parameters are NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        try:
            params[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            first = str(e).splitlines()[0]
            raise LeiaError(f"parameter {name.strip()}: {value!r} is not a plain value (a number, true/false or a "
                            f"word; {first})") from None
    return params


def cipher_from_args(args) -> ciphers.Cipher:
    params = parse_params(args.param)
    if args.key_file:
        return ciphers.load(args.key_file, **params)
    if not args.scheme:
        raise LeiaError("give --key-file, or --scheme with a key source (--seed, --secret-file or $LEIA_SECRET)")
    return ciphers.create(args.scheme, seed=args.seed, secret_file=args.secret_file, **params)


def add_key_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheme", choices=ciphers.names(), help="scheme name (not needed with --key-file)")
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="scheme parameter, repeatable")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--key-file", help="a key file written by `leia encrypt` or Cipher.save_key")
    source.add_argument("--secret-file", help="a secret written by `leia keygen`")
    source.add_argument("--seed", type=int, help="experiment seed (reproducible, not secret)")


def cmd_schemes(args) -> None:
    h, w = args.image_size
    if h < 1 or w < 1:
        raise LeiaError(f"--image-size takes a positive height and width, got {h} {w}")
    print(f"{'scheme':<10} {'log2 keys @' + f'{h}x{w}':>16}  parameters (defaults)")
    for name in ciphers.names():
        cls = ciphers.get(name)
        c = ciphers.create(name, secret="listing")
        params = ", ".join(f"{k}={v}" for k, v in c.config().items()) or "-"
        bits = c.key_space_bits((h, w)) if h % c.block_size == 0 and w % c.block_size == 0 else float("nan")
        print(f"{name:<10} {bits:>16.1f}  {params}\n{'':<28}{cls.description}")


def cmd_keygen(args) -> None:
    path = ciphers.write_secret_file(args.path)
    print(f"wrote a 32-byte secret to {path} (mode 600). Use it with --secret-file {path}, "
          f"or export {ciphers.ENV_VAR}=$(cat {path})")


def cmd_encrypt(args) -> None:
    from .folder_crypt import encrypt_folder

    cipher = cipher_from_args(args)
    report = encrypt_folder(cipher, Path(args.src), Path(args.dst), Path(args.key_out) if args.key_out else None,
                            progress=not args.quiet)
    resumed = f" ({report.resumed} of them written by an interrupted run, verified)" if report.resumed else ""
    print(f"encrypted {report.images} images with {cipher.name} {cipher.config()} (key fingerprint "
          f"{report.fingerprint}) into {args.dst}{resumed}")
    if report.converted_to_rgb:
        print(f"note: {report.converted_to_rgb} grayscale/palette images were expanded to RGB (lossless)")
    if report.key_file:
        print(f"key written to {report.key_file}: keep it; do not share it with the folder")


def cmd_decrypt(args) -> None:
    from .folder_crypt import decrypt_folder

    cipher = cipher_from_args(args)
    report = decrypt_folder(cipher, Path(args.src), Path(args.dst), progress=not args.quiet, force=args.force)
    print(f"decrypted {report.images} images into {args.dst}")


def cmd_gallery(args) -> None:
    from .gallery import render_gallery

    out = render_gallery(Path(args.out), image=args.image, size=args.size, seed=args.seed)
    print(f"wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leia", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("schemes", help="list registered schemes")
    p.add_argument("--image-size", type=int, nargs=2, default=(32, 32), metavar=("H", "W"))
    p.set_defaults(func=cmd_schemes)

    p = sub.add_parser("keygen", help="write a fresh secret file")
    p.add_argument("path")
    p.set_defaults(func=cmd_keygen)

    for name, help_text, func in (
        ("encrypt", "encrypt a folder of images into lossless PNGs", cmd_encrypt),
        ("decrypt", "decrypt a folder written by `leia encrypt`", cmd_decrypt),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("src")
        p.add_argument("dst")
        add_key_arguments(p)
        if name == "encrypt":
            p.add_argument("--key-out", help="where to write the key file (outside DST)")
        else:
            p.add_argument("--force", action="store_true",
                           help="decrypt without checking the key, completeness and checksums against the manifest")
        p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("gallery", help="render every scheme on one image")
    p.add_argument("--out", default="docs/gallery.png")
    p.add_argument("--image", default="astronaut", help="a scikit-image sample name or an image path")
    p.add_argument("--size", type=int, default=224, help="square side the image is resized to")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gallery)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (LeiaError, OSError, ValueError) as e:  # FileExistsError, PermissionError, a missing folder
        print(f"leia {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
