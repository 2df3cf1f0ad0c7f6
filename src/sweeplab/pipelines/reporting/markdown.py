"""The report as Markdown: ``report.md`` is a list of sections, each a function of the
report's inputs that returns its lines, or none when it has nothing to say. Adding a table
to the report is adding its node's output to ``write_report``'s inputs and one section here.

A section never shows an empty table: it says why there is none and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sweeplab import fail_fast
from sweeplab.config import config_hash
from sweeplab.pipelines.reporting import decisions, trials
from sweeplab.pipelines.reporting.config import SweepLayout, layout
from sweeplab.pipelines.reporting.tables import (
    code_versions,
    conditions,
    kept_code,
    mixed_code,
    mixed_setups,
    outcome_counts,
    ranking_metrics,
    setup_note,
    shown_metrics,
)
from sweeplab.run_records import COMPLETED, FAILED, MISSING, NO_RESULT, stopped_by_rule
from sweeplab.sweeps import Plan, search_of


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "–" if np.isnan(value) else format(value, floatfmt)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def interval(row: pd.Series) -> str:
    if row["n"] == 0:
        return "no completed run"
    if row["n"] < 2:
        return f"{row['mean']:.4g} (n = {row['n']}: no interval)"
    return f"{row['mean']:.4g} [{row['ci_lower']:.4g}, {row['ci_upper']:.4g}]"


# ----------------------------------------------------------------------------------------------
# title and provenance


def coverage(sweep: SweepLayout, provenance: dict[str, Any] | None) -> str | None:
    """How the runs this report covers differ from the sweep the project configures (without
    ``--params``): ``subset: 1 of 9 variants``, or None when they are the same (or unknown).

    The provenance holds the configured sweep's variant count and how many of them the run
    planned (``integration.hooks.configured_coverage``)."""
    configured = (provenance or {}).get("configured")
    if not isinstance(configured, dict):
        return None
    covered, planned, shared = len(sweep.variants), configured["variants"], configured["planned"]
    if covered == shared == planned:
        return None
    if covered == shared:
        return f"subset: {covered} of {planned} variants"
    if planned == shared:
        return f"widened: {covered} variants, the {planned} configured among them"
    return f"not the configured sweep: {covered} variants, {shared} of the {planned} configured among them"


def title(sweep: SweepLayout, provenance: dict[str, Any] | None, table: pd.DataFrame) -> str:
    """The sweep's title, and when the report covers other runs than the configured sweep, or
    runs of more than one code version, how."""
    text = sweep.title or sweep.name
    notes = []
    if (note := coverage(sweep, provenance)) is not None:
        # the overrides of this sweep's spec: what made its variants differ
        params = [p for p in (provenance or {}).get("params") or [] if p.startswith(f"{sweep.name}.")]
        notes.append(note + (f", --params {', '.join(params)}" if params else ""))
    if (code := mixed_code(table)) is not None:
        notes.append(code)
    if (setup := setup_note(table)) is not None:
        notes.append(setup)
    return f"{text} ({'; '.join(notes)})" if notes else text


def provenance_record(sweep: SweepLayout, spec: dict[str, Any], provenance: dict[str, Any] | None,
                      table: pd.DataFrame) -> dict[str, Any]:
    """``provenance.json``: the run's provenance, the code identities of its runs, the sweep's
    spec as the run saw it and its hash."""
    record = {k: v for k, v in (provenance or {}).items() if k != "sweep"}
    kept = table.loc[kept_code(table), "variant"].tolist()
    return {"sweep": sweep.name, "spec_hash": config_hash(spec), "coverage": coverage(sweep, provenance),
            "variants": len(sweep.variants), **record, "code_identities": code_versions(table),
            "code_kept": kept, "spec": spec}


# ----------------------------------------------------------------------------------------------
# the report


@dataclass
class Report:
    """What the sections read: the sweep, its spec, the tables and figures, the provenance."""

    sweep: SweepLayout
    spec: dict[str, Any]
    provenance: dict[str, Any] | None
    table: pd.DataFrame
    stats: pd.DataFrame
    outputs: dict[str, Any] = field(default_factory=dict)  # every other input of write_report, by name

    @property
    def metrics(self) -> list[str]:
        return shown_metrics(self.table, self.sweep)

    @property
    def confidence(self) -> float:
        return self.sweep.report.confidence

    def completion(self) -> pd.DataFrame:
        labels = self.sweep.labels
        columns = [*labels, "n_planned", "n_completed", "n_stopped", "n_failed", "n_missing", "completion_rate"]
        if self.stats.empty:  # no metric at all: the counts from the runs themselves
            frame = pd.DataFrame([{**grid, **outcome_counts(rows)} for grid, rows in conditions(self.table, labels)],
                                 columns=columns)
        else:
            frame = self.stats.drop_duplicates(labels)[columns]
        return frame if frame["n_stopped"].any() else frame.drop(columns="n_stopped")


Section = Callable[[Report], list[str]]


def heading(report: Report) -> list[str]:
    completion = report.completion()
    stopped = f"{int(completion['n_stopped'].sum())} stopped by a rule, " if "n_stopped" in completion else ""
    # read from the run's fail-fast ledger: the report's one input from outside the catalog
    why = fail_fast.stopped(report.sweep.name)
    stopped_early = [f"**Fail fast stopped this sweep**: {why}. The variants not started by then were not "
                     f"trained (`{report.sweep.name}.fail_fast`); fix the cause and run again.", ""] if why else []
    return [f"# {title(report.sweep, report.provenance, report.table)}", "",
            f"{len(report.table)} planned runs in {len(completion)} conditions: "
            f"{int(completion['n_completed'].sum())} completed, {stopped}"
            f"{int(completion['n_failed'].sum())} failed, {int(completion['n_missing'].sum())} missing.", "",
            *stopped_early]


def search_section(report: Report) -> list[str]:
    """A search's outcome: its settings, the trials' counts and the epochs pruning saved, the best
    trial beside its re-evaluation on fresh seeds, the history and the importances."""
    found = report.outputs.get("search")
    if found is None:
        return []
    spec, _ = search_of(report.sweep.name, report.spec)
    metric, direction = spec.objective.metric, spec.objective.direction
    counts = {state: int((found["state"] == state).sum()) for state in trials.STATES}
    seeds = report.spec.get("seeds", [0])
    epochs = trials.planned_epochs(report.sweep.variants, report.table, found)
    pruner = "no pruner" if spec.pruner.type == "none" else (
        f"{spec.pruner.type.replace('_', ' ')} pruner on val {spec.prune_metric} (first rung {spec.pruner.min_epochs} "
        f"epoch(s), reduction factor {spec.pruner.reduction_factor})")
    lines = ["## Search", "",
             f"{spec.sampler.upper() if spec.sampler == 'tpe' else spec.sampler} sampler (seed {spec.seed}), {pruner}. "
             f"Objective: val {metric} ({direction}) at each run's best epoch, the mean over a trial's seeds {seeds}.",
             "", f"{len(found)} trials: " + ", ".join(f"{n} {state}" for state, n in counts.items()) + ". "
             f"Epochs trained: {epochs[0]:,} of the {epochs[1]:,} that running every trial to the end takes"
             + (f" (pruning saved {1 - epochs[0] / epochs[1]:.0%})." if epochs[1] else "."), ""]
    done = found[found["state"] == "completed"].dropna(subset=["objective"])
    if done.empty:
        return [*lines, "No trial completed: there is no best trial.", ""]
    best = done.loc[done["objective"].idxmin() if direction == "min" else done["objective"].idxmax()]
    values = ", ".join(f"`{k}` = {best[k]:.4g}" if isinstance(best[k], float) else f"`{k}` = {best[k]}"
                       for k in spec.params if trials.present(best[k]))
    lines += [f"**Best trial: {best['trial']}**, {metric} {best['objective']:.4g}, with {values}.", ""]
    again = trials.reevaluation(report.table, metric, report.confidence)
    if again is not None:
        interval_ = (f"[{again.ci_lower:.4g}, {again.ci_upper:.4g}]" if again.n >= 2 else "(one seed: no interval)")
        lines += [f"Re-evaluated on fresh seeds {list(spec.reevaluate)} (`best_s<seed>`): {metric} {again.mean:.4g} "
                  f"{interval_}, n = {again.n} ({report.confidence:.0%} interval). The best trial's own value is the "
                  f"best of {len(done)} noisy results of the same runs that chose it, so it is biased "
                  f"{'low' if direction == 'min' else 'high'}; the fresh seeds' mean is the one to quote.", ""]
    elif spec.reevaluate:
        lines += [f"The re-evaluation on fresh seeds {list(spec.reevaluate)} has no result yet.", ""]
    else:
        lines += ["Not re-evaluated (`search.reevaluate` lists no seeds): the best trial's value is the best of "
                  "noisy results of the runs that chose it, so it is biased; quote it with care.", ""]
    lines += ["![search history](figures/search_history.png)", ""]
    shares = trials.importances(found, spec)
    if shares is None:
        lines += [f"Parameter importances need {trials.MIN_FOR_IMPORTANCE} completed trials; {len(done)} completed.", ""]
    else:
        table = pd.DataFrame({"parameter": list(shares), "importance": list(shares.values())})
        lines += [f"Parameter importances over the {len(done)} completed trials (Optuna's PED-ANOVA: how much each "
                  "key's values differ between the best trials and all of them; rough with few trials):", "",
                  markdown_table(table, floatfmt=".3f"), ""]
    ranked = done.sort_values("objective", ascending=direction == "min").head(5)
    lines += ["The five best trials (all trials: `search_trials.csv`):", "",
              markdown_table(ranked[["trial", "objective", *spec.params, "epochs_run"]]), ""]
    return lines


def completion_section(report: Report) -> list[str]:
    return ["## Completion", "", markdown_table(report.completion()), "", "![completion](figures/completion.png)", ""]


def results_section(report: Report) -> list[str]:
    lines = ["## Results per condition", ""]
    metrics = [m for m in report.metrics if m in set(report.stats.get("metric", ()))]
    if not metrics:
        return [*lines, "No run recorded a metric: nothing to summarise (see the runs left out below).", ""]
    labels = report.sweep.labels
    main = report.stats[report.stats["metric"].isin(metrics)].copy()
    main["value"] = main.apply(interval, axis=1)
    wide = main.pivot_table(index=labels, columns="metric", values="value", aggfunc="first", sort=False)
    wide = wide.reindex(columns=metrics).reset_index()
    return [*lines,
            "Mean over the seeds with a result (completed or stopped by a rule) of each run's validation value at "
            f"its best epoch, with the {report.confidence:.0%} confidence interval of the mean (Student's t, n - 1 "
            "degrees of freedom). With fewer than two runs there is no interval.", "", markdown_table(wide), ""]


def criteria_section(report: Report) -> list[str]:
    """One row per condition, one column per criterion: mean [interval] and whether it is met."""
    criteria = report.outputs.get("criteria")
    if criteria is None or criteria.empty:
        return []
    labels = report.sweep.labels
    cells = criteria.copy()
    cells["value"] = [f"{'yes' if met else 'no'}: {interval(row)}" for met, (_, row) in
                      zip(cells["met"], cells.iterrows(), strict=True)]
    wide = cells.pivot_table(index=labels, columns="metric", values="value", aggfunc="first", sort=False)
    wide = wide.reindex(columns=list(dict.fromkeys(criteria["metric"]))).reset_index()
    wide.columns = [*labels, *(f"{m} ({t})" for m, t in dict(zip(criteria["metric"], criteria["target"],
                                                                  strict=True)).items())]
    return ["## Success criteria", "",
            "Met when the mean over seeds meets the target (yes/no), with the mean and its interval; "
            "criteria.csv also says whether the whole interval meets it.", "", markdown_table(wide), ""]


def decision_tree_section(report: Report) -> list[str]:
    tree = report.sweep.report.decision_tree
    return [] if tree is None else decisions.walk_markdown(decisions.walk(tree, report.table), tree)


def figures_section(report: Report) -> list[str]:
    names = [name for name in report.outputs.get("figures") or {} if name != "completion.png"]
    return ["## Figures", "", *(f"![{name}](figures/{name})" for name in names), ""] if names else []


def comparisons_section(report: Report) -> list[str]:
    comparisons = report.outputs.get("comparisons")
    if comparisons is None:
        return []
    if comparisons.empty:
        why = ("The sweep has one condition: nothing to compare." if len(report.completion()) < 2
               else "No run recorded a metric to compare.")
        return ["## Comparisons", "", why, ""]
    alpha = 1 - report.confidence
    metric, min_effect = comparisons["metric"].iloc[0], report.sweep.report.min_effect
    effect = (f" and a difference of at least {min_effect:g} (`report.min_effect`)" if min_effect is not None
              else "; no smallest difference that matters is set (`report.min_effect`)")
    lines = [f"## Comparisons on {metric}", ""]
    tested = comparisons[np.isfinite(comparisons["pvalue"])]
    lines += [f"{len(comparisons)} pairs, {len(tested)} tested (paired t-test when the same seeds completed "
              f"in both, else Welch's); p-values corrected by {comparisons['correction'].iloc[0]} across "
              f"the tested pairs; significant needs p < {alpha:.2g}{effect}. Beside each test: the mean "
              f"difference A - B with a {report.confidence:.0%} bootstrap interval (percentile, seeds resampled, "
              "together where paired), which assumes no normality, and P(A better), the chance that a run of A "
              "beats a run of B (ties count half; Agarwal et al. 2021).", ""]
    if not len(tested):
        return [*lines, "No pair had two completed runs on both sides, so none was tested: run more seeds "
                "(`seeds` in the sweep, or `--params \"<sweep>.seeds=[0,1,2]\"`).", ""]
    shown = tested.sort_values("p_adjusted").assign(
        difference=lambda f: [f"{d:.4g} [{lo:.4g}, {hi:.4g}]" for d, lo, hi in
                              zip(f["mean_diff"], f["diff_ci_lower"], f["diff_ci_upper"], strict=True)])
    cols = ["condition_a", "condition_b", "difference", "p_improvement", "test", "p_adjusted", "effect_size",
            "significant"]
    lines += [markdown_table(shown[cols].rename(columns={"p_improvement": "P(A better)"})), "", "Pairs without a test (a side with n < 2) are listed in comparisons.csv.",
              ""]
    return [*lines, *failure_sensitivity(tested)]


def failure_sensitivity(tested: pd.DataFrame) -> list[str]:
    """Per pair whose conclusion changes when every failed run is scored as the worst value
    observed, a line saying so; one line when none changes."""
    if "significant_failed_as_worst" not in tested:
        return []
    worst = tested["worst_value"].iloc[0]
    changed = tested[tested["significant"] != tested["significant_failed_as_worst"]]
    lines = ["**Sensitivity to failures.** Some runs failed and are left out above. Scored instead as the worst "
             f"value observed ({worst:.4g}), "]
    if changed.empty:
        return [lines[0] + "no pair's conclusion changes.", ""]
    lines[0] += f"{len(changed)} pair(s) change:"
    return [*lines, "", *(f"- {r.condition_a} vs {r.condition_b}: "
                          f"{'significant' if r.significant else 'not significant'} -> "
                          f"{'significant' if r.significant_failed_as_worst else 'not significant'} "
                          f"(p adjusted {r.p_adjusted_failed_as_worst:.3g})" for r in changed.itertuples()), ""]


def power_section(report: Report) -> list[str]:
    power = report.outputs.get("power")
    if power is None or power.empty:
        return []
    alpha = 1 - report.confidence
    return ["## How many seeds", "",
            f"From the spread of runs within a condition (pooled standard deviation), the seeds per condition a "
            f"two-sided two-sample t-test at p < {alpha:.2g} needs to detect a difference of 1 and 2 standard "
            "deviations with 80% power, and the smallest difference this sweep's seeds detect so (noncentral t; "
            "Cohen 1988). Few seeds estimate the deviation itself roughly.", "",
            markdown_table(power), ""]


def aggregates_section(report: Report) -> list[str]:
    found = report.outputs.get("aggregates")
    if found is None or found.empty:
        return []
    shown = found.assign(iqm=[f"{m:.4g} [{lo:.4g}, {hi:.4g}]" for m, lo, hi in
                              zip(found["iqm"], found["ci_lower"], found["ci_upper"], strict=True)])
    return ["## Aggregates over tasks", "",
            f"Per condition, the interquartile mean of every run's score on every task (`report.aggregates`), "
            f"with a {report.confidence:.0%} stratified bootstrap interval: runs resampled within each task "
            "(Agarwal et al. 2021). Its performance profile is `figures/profile_<name>.png`.", "",
            markdown_table(shown[[*report.sweep.labels, "aggregate", "iqm", "n_runs", "n_tasks", "tasks"]]), ""]


def best_section(report: Report) -> list[str]:
    best = report.outputs.get("best")
    if best is None:
        return []
    ranked = ranking_metrics(report.table, report.sweep)
    source = "report.best_by" if report.sweep.report.best_by else "the compare metric; set report.best_by to choose"
    lines = ["## Best setting per axis", "",
             f"Ranked by {', '.join(ranked) or 'no metric'} ({source}). For each axis and setting of the others: "
             "the best value by mean, the runner-up, and whether the best is significantly better "
             f"(uncorrected p < {1 - report.confidence:.2g}).", ""]
    if best.empty or "runner_up" not in best or best["runner_up"].isna().all():
        return [*lines, "No axis has two settings with a completed run to compare.", ""]
    lines += [markdown_table(best), ""]
    if "pvalue" in best and not np.isfinite(best["pvalue"].to_numpy(dtype=float)).any():
        lines += ["No setting had two runs on both sides, so none was tested: run more seeds.", ""]
    return lines


def stopped_section(report: Report) -> list[str]:
    stopped = report.table[report.table["status"].map(stopped_by_rule)]
    if not len(stopped):
        return []
    return ["## Runs stopped by a rule (their metrics count)", "",
            *(f"- `{r.variant}` ({r.status}): {r.reason}" for r in stopped.itertuples()), ""]


def left_out_section(report: Report) -> list[str]:
    excluded = report.table[report.table["status"].isin(NO_RESULT)]
    if not len(excluded):
        return []
    return ["## Runs left out", "", *(f"- `{r.variant}` ({r.status}): {r.reason}" for r in excluded.itertuples()), ""]


def provenance_section(report: Report) -> list[str]:
    p = report.provenance or {}
    record = provenance_record(report.sweep, report.spec, report.provenance, report.table)
    lines = ["## Provenance", ""]
    if p.get("command"):
        lines.append(f"- command: `{p['command']}`")
    if p.get("pipelines"):
        lines.append(f"- pipelines: {', '.join(p['pipelines'])}; environment: {p.get('env')}; "
                     f"runner: {p.get('runner')}")
    lines.append(f"- sweep spec: `{report.sweep.name}`, hash `{record['spec_hash']}` "
                 f"({len(report.sweep.variants)} variants; the spec is in provenance.json)")
    if record["coverage"]:
        lines.append(f"- runs: {record['coverage']} of the sweep as configured without --params")
    lines.append(f"- --params: {', '.join(f'`{x}`' for x in p['params']) if p.get('params') else 'none'}")
    if p.get("load_versions"):
        lines.append("- pinned versions: " + ", ".join(f"`{k}:{v}`" for k, v in p["load_versions"].items()))
    if p.get("code_version"):
        lines.append(f"- code: {p['code_version']}")
    identities = record["code_identities"]
    if identities:
        kept = set(record["code_kept"])
        lines.append("- code identities of the runs: " + "; ".join(
            f"`{code}` ({len(runs)} run{'s' * (len(runs) != 1)}" + (f", {n} kept from earlier code" if (n := len(kept & set(runs))) else "")
            + ")" for code, runs in identities.items()))
    if p.get("date"):
        lines.append(f"- date: {p['date']}")
    return [*lines, ""]


SECTIONS: list[Section] = [heading, search_section, completion_section, results_section, criteria_section,
                           decision_tree_section, figures_section, comparisons_section, power_section,
                           aggregates_section, best_section, stopped_section, left_out_section, provenance_section]


def write_report(spec: dict[str, Any], *, sweep: Plan, provenance: dict[str, Any] | None = None,
                 table: pd.DataFrame, stats: pd.DataFrame, figures: dict[str, bytes] | None = None,
                 **outputs: Any) -> dict[str, Any]:
    """The report folder: ``report.md`` (every section of ``SECTIONS``), ``provenance.json``,
    ``decision_tree.json`` when the spec has a tree, and the figures ``report.md`` links to.

    ``outputs`` are the report's other tables by name (``comparisons``, ``best``,
    ``criteria``...), for the sections to read.
    """
    figures = {**(figures or {}), **(outputs.pop("search_figures", None) or {})}
    report = Report(layout(spec, sweep), spec, provenance, table, stats, {**outputs, "figures": figures})
    lines = [line for section in SECTIONS for line in section(report)]
    files: dict[str, Any] = {"report.md": "\n".join(lines).rstrip("\n") + "\n",
                             "provenance.json": json.dumps(provenance_record(report.sweep, spec, provenance, table),
                                                           indent=2, default=str)}
    if (tree := report.sweep.report.decision_tree) is not None:
        files["decision_tree.json"] = json.dumps(decisions.as_dict(decisions.walk(tree, table)), indent=2,
                                                 allow_nan=False)
    if (found := outputs.get("search")) is not None:
        files["search_trials.csv"] = found.to_csv(index=False)
    return files | {f"figures/{k}": v for k, v in figures.items()}


def results_markdown(table: pd.DataFrame, spec: dict[str, Any], provenance: dict[str, Any] | None = None,
                     *, sweep: Plan) -> str:
    """The per-run results table as Markdown, with a line counting run outcomes."""
    plan = layout(spec, sweep)
    columns = ["variant", *plan.labels, "seed", "status", *shown_metrics(table, plan), "best_epoch", "epochs_run",
               "wall_s"]
    # a sweep that has not run yet has no scalars; a device or precision is shown where runs differ in it
    shown = table[[c for c in [*columns, *mixed_setups(table)] if c in table]]
    if mixed_code(table) is not None:  # which code made each run, when not one code made them all
        shown = shown.assign(code=[f"{c} (kept)" if k else c for c, k in zip(table["code"], kept_code(table),
                                                                                  strict=True)])
    counts = table["status"].value_counts()
    stopped = counts.drop([COMPLETED, *NO_RESULT], errors="ignore")
    lines = [f"# {title(plan, provenance, table)}: results", "",
             f"{len(table)} runs: {counts.get(COMPLETED, 0)} completed, "
             + "".join(f"{n} {status}, " for status, n in stopped.items())
             + f"{counts.get(FAILED, 0)} failed, "
             f"{counts.get(MISSING, 0)} missing. Metrics are validation values at each run's best epoch.",
             "", markdown_table(shown)]
    not_done = table[table["status"] != COMPLETED]
    if len(not_done):
        lines += ["", "## Runs that did not complete all epochs", ""]
        lines += [f"- `{r.variant}` ({r.status}): {r.reason}" for r in not_done.itertuples()]
    return "\n".join(lines) + "\n"
