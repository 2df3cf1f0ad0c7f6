"""Log lines that do not grow with the sweep.

Kedro logs every node it runs with all its inputs and outputs; a report node reads every
variant's summary and history, so at 450 variants that one line is 15 KB. Above DEBUG it is
shortened to the node's name and the counts; at DEBUG (``kedro.pipeline.node: DEBUG`` in
``conf/logging.yml``) the full line is kept. Kedro refuses filters in ``logging.yml`` (no
``()`` factories), so ``settings.py`` installs this one, in every process a run starts.
"""

from __future__ import annotations

import logging

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


NODE_LOGGER = "kedro.pipeline.node"


def install() -> None:
    """Shorten long node lines from now on (once, however often it is called)."""
    logger = logging.getLogger(NODE_LOGGER)
    if not any(isinstance(f, ShortNodeLines) for f in logger.filters):
        logger.addFilter(ShortNodeLines())
