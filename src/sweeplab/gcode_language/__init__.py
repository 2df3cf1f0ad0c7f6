"""The G-code language as a library, with no Kedro in it: the line parser and program reader
(``parser``), the NGC interpreter for LinuxCNC's control flow (``ngc``), and the tokenisers
and vocabularies a model reads (``tokens``). ``pipelines/cnc`` builds the data prep on it."""

from sweeplab.errors import InputError


class GCodeSyntaxError(InputError):
    """A malformed line; the message names the file, the line number and the text."""
