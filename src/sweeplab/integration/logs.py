"""Log lines for people: none that grows with the sweep, and routine ones at DEBUG.

- Kedro logs every node it runs with all its inputs and outputs; a report node reads every
  variant's summary and history, so at 450 variants that one line is 15 KB. Above DEBUG it
  is shortened to the node's name and the counts; at DEBUG (``kedro.pipeline.node: DEBUG``
  in ``conf/logging.yml``) the full line is kept.
- Kedro logs each dataset load and save at INFO, about 230 lines in the default run; they
  are logged at DEBUG instead.
- Python warnings go to the log (logger ``py.warnings``), and Kedro's own deprecation
  warnings (``--pipeline``, which Sweeplab keeps as a documented alias) at DEBUG.

A handler set to DEBUG in ``conf/logging.yml`` shows all of it again. Kedro refuses filters
in ``logging.yml`` (no ``()`` factories), so ``settings.py`` installs these, in every process
a run starts.
"""

from __future__ import annotations

import logging
import re

MAX_NODE_LINE = 300  # characters of "node: function([inputs]) -> [outputs]" logged as they are


class ShortNodeLines(logging.Filter):
    """``Running node: <name> (<n> inputs, <m> outputs)`` for a node whose line would be long."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Running node: %s" or not record.args or logging.getLogger(record.name).isEnabledFor(
                logging.DEBUG):
            return True
        text = str(record.args[0])
        if len(text) <= MAX_NODE_LINE:
            return True
        name, _, call = text.partition(": ")
        inputs, _, outputs = call.partition(" -> ")
        record.msg = "Running node: %s (%d inputs, %d outputs)"
        record.args = (name, _count(inputs), _count(outputs))
        return True


def _count(listed: str) -> int:
    """Datasets in ``func([a;b;c])`` or ``[a;b]`` as Kedro writes them."""
    inside = listed[listed.find("[") + 1:listed.rfind("]")] if "[" in listed else ""
    return len([part for part in inside.split(";") if part.strip()])


class AtDebug(logging.Filter):
    """Log the records whose message matches ``pattern`` at DEBUG."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern.search(record.getMessage()):
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


NODE_LOGGER = "kedro.pipeline.node"
FILTERS = {
    NODE_LOGGER: ShortNodeLines,
    "kedro.io.data_catalog": lambda: AtDebug(r"^(Loading data from|Saving data to) "),
    # a captured warning's message is "<file>:<line>: <category>: <text>"
    "py.warnings": lambda: AtDebug(r"^\S*:\d+: KedroDeprecationWarning: "),
}


def install() -> None:
    """Install the filters (once, however often it is called) and log Python's warnings."""
    logging.captureWarnings(True)
    for name, make in FILTERS.items():
        logger = logging.getLogger(name)
        if not any(getattr(f, "installed_by", None) == __name__ for f in logger.filters):
            log_filter = make()
            log_filter.installed_by = __name__
            logger.addFilter(log_filter)
