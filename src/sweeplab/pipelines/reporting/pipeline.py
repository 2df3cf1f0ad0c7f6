"""``<sweep>_report``: the results table, heatmaps and validation curves of one sweep.

It reads only run records, so it runs alone on the latest saved (or ``--load-versions``
pinned) summaries and histories, without training anything.
"""

import warnings

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.reporting.nodes import (
    plot_heatmaps,
    plot_validation_curves,
    results_markdown,
    results_table,
)
from sweeplab.sweeps import Variant


def create_pipeline(sweep: str, variants: list[Variant]) -> Pipeline:
    spec = f"params:{sweep}"
    summaries = [f"{v.namespace}.summary" for v in variants]
    histories = {v.name: f"{v.namespace}.history" for v in variants}
    with warnings.catch_warnings():
        # the inputs are other namespaces' outputs, so their names hold dots by design
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        return _report(sweep, spec, summaries, histories)


def _report(sweep: str, spec: str, summaries: list[str], histories: dict[str, str]) -> Pipeline:
    return Pipeline(
        [
            Node(results_table, [spec, *summaries], "results_table", name="tabulate_results"),
            Node(results_markdown, ["results_table", spec], "results_markdown", name="write_results_markdown"),
            Node(plot_heatmaps, ["results_table", spec], "heatmaps", name="plot_heatmaps"),
            Node(plot_validation_curves, {"spec": spec, **histories}, "validation_curves",
                 name="plot_validation_curves"),
        ],
        namespace=f"{sweep}_report",
        inputs={*summaries, *histories.values()},
        parameters={spec},
        tags=["reporting"],
    )
