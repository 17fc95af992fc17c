"""User-facing errors of lic_core.

Every error a user can cause (bad file, bad argument, missing weights) is a :class:`LicError`
subclass with a one-line message. The CLI prints the message and exits with status 2; the GUI
shows it in a dialog. Programming errors stay ordinary exceptions.
"""


class LicError(Exception):
    """Base class of all user-facing errors (one-line message)."""


class ImageError(LicError):
    """The input image cannot be read or is not supported (size, mode, limit)."""


class LicFormatError(LicError):
    """A .lic file is malformed: wrong magic, newer version, corrupted, truncated, mismatched."""


class LicMismatchError(LicError):
    """A .lic file passed its integrity checks, but this machine decoded different symbols or a
    different picture than the encoder recorded (the file's check values): the decoder's
    arithmetic disagrees with the encoder's.  Never a picture; please report it."""


class ModelNotFoundError(LicError):
    """A model name is unknown, or its weights file is missing."""


class CodecUnavailableError(LicError):
    """A codec exists but cannot run here (plugin not installed, GPU missing...)."""


class CancelledError(LicError):
    """Work was cancelled by the user (progress callback asked to stop)."""


class CheckpointError(LicError):
    """A user's checkpoint cannot be read as the architecture it is said to be (missing or
    truncated file, not a checkpoint, pickled objects, wrong architecture): the message says what
    was expected and what was found."""
