"""The reporting pipeline's nodes. They read run records (summaries and histories) and the
sweep spec, never a model, so one report serves every family.

Each lives in the module of its kind; ``pipeline.py`` names them from here:

- ``config``: the ``report:`` section as typed config, and the sweep's layout;
- ``tables``: the run table, statistics, comparisons, criteria, best per axis, curves;
- ``report_figures`` (which figures) and ``figures`` (drawing);
- ``trials``: a search's trials, history figure, importances and re-evaluation;
- ``markdown``: ``results.md``, and the report folder: ``report.md`` as a list of sections,
  ``provenance.json``.

Every node takes the sweep as the registry planned it (``sweep=``, a ``sweeplab.sweeps.Plan``
bound by ``pipeline.py``): its variants and axes, never re-expanded from the spec, and its
name, so that an error names the sweep's own keys (``ae_sweep.report.best_by``).
"""

from sweeplab.pipelines.reporting.config import check_report, layout
from sweeplab.pipelines.reporting.markdown import results_markdown, write_report
from sweeplab.pipelines.reporting.report_figures import plot_report_figures
from sweeplab.pipelines.reporting.tables import (
    aggregate_curves,
    aggregate_scores,
    best_per_axis,
    compare_conditions,
    condition_statistics,
    power_table,
    results_table,
    success_criteria,
)
from sweeplab.pipelines.reporting.trials import plot_search, search_trials

__all__ = ["aggregate_curves", "aggregate_scores", "best_per_axis", "check_report", "compare_conditions", "condition_statistics",
           "layout", "plot_report_figures", "plot_search", "power_table", "results_markdown", "results_table", "search_trials",
           "success_criteria", "write_report"]
