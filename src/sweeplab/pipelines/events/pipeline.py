"""Event data preparation. Which nodes run depends on ``events.source``:

- ``synthetic`` (base): generate an unsplit file into ``events_generated``, split, normalise;
- ``unsplit``: a real unsplit file (``X``, ``y``) at ``events_unsplit``, split it, normalise;
- ``split``: a real split file (``4tops_splitted.h5``) at ``events_split``, normalise only.

Generated data has its own dataset, never one a real file is read from, so no setting can
make the generator write over a user's recording.
"""

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.events.nodes import fit_normaliser, split_events
from sweeplab.pipelines.events.synthetic import generate_events

UNSPLIT = {"synthetic": "events_generated", "unsplit": "events_unsplit"}  # source -> the file split


def create_pipeline(source: str) -> Pipeline:
    nodes = []
    if source == "synthetic":
        nodes.append(Node(generate_events, "params:events.synthetic", "events_generated", name="generate_events"))
    if source in UNSPLIT:
        nodes.append(Node(split_events, [UNSPLIT[source], "params:events.split"], "events_split",
                          name="split_events"))
    nodes.append(Node(fit_normaliser, ["events_split", "params:events.split"], "events_normaliser", name="fit_normaliser"))
    return Pipeline(nodes, tags=["data_prep"])
