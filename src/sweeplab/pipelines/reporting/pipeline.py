"""``<sweep>_report``: results, statistics across seeds, comparisons, curves and figures.

It reads only run records (and the sweep spec), so it runs alone on the latest saved (or
``--load-versions`` pinned) summaries and histories without training anything. A planned
run whose record was never saved counts as missing.
"""

import warnings

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.reporting import nodes
from sweeplab.sweeps import Variant


def create_pipeline(sweep: str, variants: list[Variant]) -> Pipeline:
    spec = f"params:{sweep}"
    summaries = {v.name: f"{v.namespace}.summary" for v in variants}
    histories = {v.name: f"{v.namespace}.history" for v in variants}
    with warnings.catch_warnings():
        # the inputs are other namespaces' outputs, so their names hold dots by design
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        return Pipeline(
            [
                Node(nodes.results_table, {"spec": spec, **summaries}, "results_table", name="tabulate_results"),
                Node(nodes.results_markdown, ["results_table", spec], "results_markdown",
                     name="write_results_markdown"),
                Node(nodes.condition_statistics, ["results_table", spec], ["condition_stats", "aggregated_results"],
                     name="compute_condition_statistics"),
                Node(nodes.compare_conditions, ["results_table", spec], "comparisons", name="compare_conditions"),
                Node(nodes.best_per_axis, ["results_table", spec], "best_per_axis", name="find_best_per_axis"),
                Node(nodes.success_criteria, ["condition_stats", spec], "criteria", name="check_success_criteria"),
                Node(nodes.aggregate_curves, {"spec": spec, **histories}, "curves", name="aggregate_curves"),
                Node(nodes.plot_report_figures,
                     {"table": "results_table", "stats": "condition_stats", "curves": "curves", "spec": spec,
                      **histories},
                     "report_figures", name="plot_report_figures"),
                Node(nodes.write_report,
                     ["results_table", "condition_stats", "comparisons", "best_per_axis", "criteria", "report_figures",
                      spec],
                     "report", name="write_report"),
            ],
            namespace=f"{sweep}_report",
            inputs={*summaries.values(), *histories.values()},
            parameters={spec},
            tags=["reporting"],
        )
