"""Event data preparation. Which nodes run depends on ``events.source``:

- ``synthetic`` (base): generate an unsplit file, split it, fit the normaliser;
- ``unsplit``: a real unsplit file (``X``, ``y``) at ``events_unsplit``, split it, normalise;
- ``split``: a real split file (``4tops_splitted.h5``) at ``events_split``, normalise only.
"""

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.events.nodes import fit_normaliser, split_events
from sweeplab.pipelines.events.synthetic import generate_events

SOURCES = ("synthetic", "unsplit", "split")


def create_pipeline(source: str = "synthetic") -> Pipeline:
    if source not in SOURCES:
        raise ValueError(f"parameters events.source: expected one of {list(SOURCES)}, got {source!r}")
    nodes = []
    if source == "synthetic":
        nodes.append(Node(generate_events, "params:events.synthetic", "events_unsplit", name="generate_events"))
    if source in ("synthetic", "unsplit"):
        nodes.append(Node(split_events, ["events_unsplit", "params:events.split"], "events_split", name="split_events"))
    nodes.append(Node(fit_normaliser, ["events_split", "params:events.split"], "events_normaliser", name="fit_normaliser"))
    return Pipeline(nodes, tags=["data_prep"])
