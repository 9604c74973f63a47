"""Errors raised by leia. Messages say what was wrong and what was expected, and
never contain key material."""


class LeiaError(Exception):
    """Base class of every leia error."""


class UnknownNameError(LeiaError, ValueError):
    """A registry lookup failed (unknown scheme, attack, ...)."""


class InputError(LeiaError, ValueError):
    """A call got arguments it cannot use (e.g. image ids for a scheme without per-image keys)."""


class ImageFormatError(InputError):
    """An image tensor has the wrong shape, channel count or size for the block size."""


class ImageDtypeError(ImageFormatError, TypeError):
    """An image tensor has a dtype that is not exactly 8-bit."""


class KeyMaterialError(LeiaError, ValueError):
    """A key source is missing or invalid."""


class KeyMismatchError(KeyMaterialError):
    """A key was made for another scheme, parameters or image size."""


class NotInvertibleError(LeiaError):
    """Decryption was asked of a transform that has no inverse (legacy EtC, throw-away keys)."""


class NotApplicable(InputError):
    """An attack does not apply to this scheme (or scheme setting). A sweep records such a cell as
    not applicable, with the reason; a single run reports it as the user error it is."""
