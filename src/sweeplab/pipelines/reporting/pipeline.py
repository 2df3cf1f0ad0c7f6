"""``<sweep>_report``: results, statistics across seeds, comparisons, curves and figures.

It reads only run records (and the sweep spec), so it runs alone on the latest saved (or
``--load-versions`` pinned) summaries and histories without training anything. A planned
run whose record was never saved counts as missing.
"""

import functools
import warnings
from collections.abc import Callable

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines import node_function
from sweeplab.pipelines.reporting import nodes
from sweeplab.sweeps import Plan


def _planned(func: Callable, plan: Plan) -> Callable:
    """A node function told its sweep as planned (its name for messages, its axes and
    variants); it pickles for ParallelRunner."""
    return node_function(func, sweep=plan)


def create_pipeline(plan: Plan) -> Pipeline:
    sweep = plan.name
    spec = f"params:{sweep}"
    fn = functools.partial(_planned, plan=plan)
    summaries = {v.name: f"{v.namespace}.summary" for v in plan.variants}
    histories = {v.name: f"{v.namespace}.history" for v in plan.variants}
    searched = any(v.trial is not None for v in plan.variants)
    # a search's trials, history figure and importances (reporting.trials), for its own section
    search_nodes = [Node(fn(nodes.search_trials), {"spec": spec, **summaries}, "search_trials", name="tabulate_trials"),
                    Node(fn(nodes.plot_search), ["search_trials", spec], "search_figures", name="plot_search_history"),
                    ] if searched else []
    search_inputs = {"search": "search_trials", "search_figures": "search_figures"} if searched else {}
    with warnings.catch_warnings():
        # the inputs are other namespaces' outputs, so their names hold dots by design
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        return Pipeline(
            [
                Node(fn(nodes.results_table), {"spec": spec, **summaries}, "results_table", name="tabulate_results"),
                Node(fn(nodes.results_markdown), ["results_table", spec, "run_provenance"], "results_markdown",
                     name="write_results_markdown"),
                Node(fn(nodes.condition_statistics), ["results_table", spec], ["condition_stats", "aggregated_results"],
                     name="compute_condition_statistics"),
                Node(fn(nodes.compare_conditions), ["results_table", spec], "comparisons", name="compare_conditions"),
                Node(fn(nodes.best_per_axis), ["results_table", spec], "best_per_axis", name="find_best_per_axis"),
                Node(fn(nodes.success_criteria), ["condition_stats", spec], "criteria", name="check_success_criteria"),
                Node(fn(nodes.power_table), ["condition_stats", spec], "power", name="size_seeds"),
                Node(fn(nodes.aggregate_scores), ["results_table", spec], "aggregates", name="aggregate_over_tasks"),
                Node(fn(nodes.aggregate_curves), {"spec": spec, **histories}, "curves", name="aggregate_curves"),
                Node(fn(nodes.plot_report_figures), ["results_table", "condition_stats", "curves", spec],
                     "report_figures", name="plot_report_figures"),
                *search_nodes,
                # the report's sections read these by name: a new table is one more entry here
                Node(fn(nodes.write_report),
                     {"spec": spec, "provenance": "run_provenance", "table": "results_table",
                      "stats": "condition_stats", "comparisons": "comparisons", "best": "best_per_axis",
                      "criteria": "criteria", "power": "power", "aggregates": "aggregates",
                      "figures": "report_figures", **search_inputs},
                     "report", name="write_report"),
            ],
            namespace=f"{sweep}_report",
            inputs={*summaries.values(), *histories.values()},
            parameters={spec},
            tags=["reporting"],
        )
