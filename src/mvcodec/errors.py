"""User-facing errors.

Every problem caused by the input (a missing file, a corrupt bitstream, an unknown codec) is raised as a
:class:`MvcodecError`. The CLI prints its message on one line and exits with status 2; anything else is a bug.
"""


class MvcodecError(Exception):
    """A problem with the user's input or environment, reported as one line, exit status 2."""


class InputError(MvcodecError):
    """An input clip, manifest or option that cannot be used."""


class BitstreamError(MvcodecError):
    """A ``.mvc`` file that is truncated, corrupted, of an unknown version, or made by an unknown codec."""


class CodecError(MvcodecError):
    """A codec that is unavailable (missing encoder binary) or that failed on valid input."""
