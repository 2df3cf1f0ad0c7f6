"""CNC recordings: G-code programs, their sensor logs, and the tokens and windows made of them."""

from sweeplab.errors import InputError


class GCodeSyntaxError(InputError):
    """A malformed line; the message names the file, the line number and the text."""
