"""Named experiments: names, validation, subsets, the report axis, and the family mechanism
(a template's free inputs checked when pipelines are registered)."""

import dataclasses
from pathlib import Path

import pytest

import sweeplab.pipelines
from sweeplab.config import ConfigError
from sweeplab.families import discover
from sweeplab.integration import session
from sweeplab.pipelines.ae.pipeline import FAMILY
from sweeplab.pipelines.reporting import nodes as reporting
from sweeplab.pipelines.reporting.report_figures import default_plots
from sweeplab.sweeps import SweepError, expand, resolve_variant_config, sweep_axes
from tests.conftest import planned

SPEC = {
    "family": "ae",
    "experiments": {
        "small": {"model.latent_dim": 4},
        "wide_beta0.5": {"model": {"hidden_dim": 32}, "loss.globals_beta": 0.5},
        "vq": {"model.latent_space": "vq"},
    },
    "seeds": [0, 1],
}


def test_experiments_times_seeds_with_safe_names():
    variants = expand("ae_named", SPEC)
    assert [v.name for v in variants] == ["small_s0", "small_s1", "wide_beta0p5_s0", "wide_beta0p5_s1",
                                          "vq_s0", "vq_s1"]
    assert variants[2].condition == {"experiment": "wide_beta0.5"}, "the report shows the name as written"
    assert sweep_axes(SPEC) == {"experiment": "experiment"}


def test_experiments_times_grid(ae_defaults):
    spec = {**SPEC, "grid": {"trainer.lr": [1e-3, 1e-2]}, "labels": {"trainer.lr": "lr"}, "seeds": [0]}
    variants = expand("ae_named", spec)
    assert len(variants) == 6 and variants[1].name == "small_lr0p01_s0"
    assert variants[1].condition == {"experiment": "small", "trainer.lr": 0.01}
    config = resolve_variant_config(ae_defaults, family=FAMILY, variant=variants[3])["config"]
    assert (config["model"]["hidden_dim"], config["loss"]["globals_beta"], config["trainer"]["lr"]) == (32, 0.5, 0.01)
    assert config["model"]["latent_dim"] == ae_defaults["model"]["latent_dim"], "one experiment's change only"


def test_only_runs_a_subset_in_the_order_written():
    assert [v.name for v in expand("ae_named", {**SPEC, "only": "vq small"})] == ["small_s0", "small_s1", "vq_s0",
                                                                                   "vq_s1"]
    assert [v.name for v in expand("ae_named", {**SPEC, "only": ["vq"], "seeds": [3]})] == ["vq_s3"]


@pytest.mark.parametrize(("spec", "message"), [
    ({**SPEC, "experiments": {}}, r"sweep 'ae_named' expands to zero variants: 'experiments' is empty"),
    ({**SPEC, "only": "smal"}, r"ae_named.only: no experiment 'smal'; did you mean small\?"),
    ({**SPEC, "only": ""}, r"'only' names no experiment"),
    ({"family": "ae", "grid": {"trainer.lr": [1]}, "only": "a"}, r"ae_named.only: .* lists no 'experiments'"),
    ({**SPEC, "experiments": {"a": 3}}, r"ae_named.experiments.a: got 3; expected a mapping"),
    ({**SPEC, "grid": {"model.latent_dim": [2, 3]}}, r"ae_named.experiments.small.model.latent_dim: also a grid axis"),
    ({**SPEC, "experiments": {"a.b": {}, "a-b": {}}}, r"variant names \['a-b_s0', 'a-b_s1'\] repeat"),
    ({"family": "ae"}, r"needs a 'grid' mapping, named 'experiments', or both"),
])
def test_bad_experiment_specs_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        expand("ae_named", spec)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"model.latnt_dim": 4}, r"^ae_named.experiments.bad.model.latnt_dim: not a parameter of the family defaults; "
                             r"did you mean model.latent_dim\?$"),
    ({"model": {"latent_dim": -1}}, r"^ae_named.experiments.bad.model.latent_dim: got -1; expected an integer"),
    ({"modl.x": 1}, r"^ae_named.experiments.bad.modl.x: not a parameter \('modl' is not a section"),
])
def test_an_unknown_or_bad_key_names_the_experiment_and_the_key(ae_defaults, overrides, message):
    variant = expand("ae_named", {**SPEC, "experiments": {"bad": overrides}})[0]
    with pytest.raises(SweepError, match=message):
        resolve_variant_config(ae_defaults, family=FAMILY, variant=variant)


def test_the_report_treats_experiment_as_a_categorical_axis():
    spec = {**SPEC, "report": {"metrics": ["loss"]}}
    summaries = {v.name: {"status": "completed", "reason": "", "best": {"val": {"loss": loss}}}
                 for v, loss in zip(expand("r", spec), [3.0, 3.2, 1.0, 1.1, 2.0, 2.3], strict=True)}
    table = reporting.results_table(spec, **summaries, sweep=planned(spec))
    assert list(table.columns[:4]) == ["variant", "experiment", "seed", "status"]
    stats, _ = reporting.condition_statistics(table, spec, sweep=planned(spec))
    means = stats[stats["metric"] == "loss"].set_index("experiment")["mean"]
    assert means.to_dict() == pytest.approx({"small": 3.1, "wide_beta0.5": 1.05, "vq": 2.15})
    best = reporting.best_per_axis(table, spec, sweep=planned(spec))
    assert best.loc[0, ["axis", "best", "runner_up"]].tolist() == ["experiment", "wide_beta0.5", "vq"]
    assert len(reporting.compare_conditions(table, spec, sweep=planned(spec))) == 3
    lines, heatmaps = default_plots(table, reporting.layout(spec, planned(spec)))
    assert lines == [] and heatmaps == [], "no line plot over a categorical axis"
    assert "| variant | experiment | seed |" in reporting.results_markdown(table, spec, sweep=planned(spec))


def test_every_family_is_discovered_and_its_template_checked():
    found = discover()
    folders = Path(sweeplab.pipelines.__file__).parent
    declared = {p.parent.name for p in folders.glob("*/pipeline.py") if "FAMILY = Family(" in p.read_text()}
    assert set(found) == declared, "every folder whose pipeline.py declares a family, and only those"
    for family in found.values():
        family.check()
        assert {n.name for n in family.template().nodes} >= {family.train_node or f"train_{family.name}",
                                                             "plot_losses"}


def test_a_template_input_no_one_makes_is_named_at_registration():
    leaky = dataclasses.replace(FAMILY, shared_inputs=frozenset())
    with pytest.raises(ConfigError, match=r"family 'ae': its per-variant nodes read \['events_normaliser'\]"):
        leaky.check()


def test_the_full_environment_overrides_an_experiments_values(kedro_project, monkeypatch):
    monkeypatch.setattr(session, "_parameters", None)
    monkeypatch.chdir(kedro_project)
    sizes = {}
    for env in ("base", "full"):
        monkeypatch.setenv("KEDRO_ENV", env)
        params = session.parameters()
        family = discover()["vae"]
        for variant in expand("vae_configs", params["vae_configs"]):
            config = resolve_variant_config(params["vae"], family=family, variant=variant)["config"]
            sizes[env, variant.experiment.name] = (config["model"]["latent_dim"], config["loss"]["beta_max"])
    assert sizes["base", "conv1d_base"] == (32, 1.0) and sizes["full", "conv1d_base"] == (256, 1.0)
    assert sizes["base", "conv1d_512d_beta0"] == (64, 0.0) and sizes["full", "conv1d_512d_beta0"] == (512, 0.0)


@pytest.mark.parametrize("env", ["base", "full", "tiny"])
def test_every_environment_plans_every_sweep_of_every_family(kedro_project, monkeypatch, env):
    """The whole check a run starts with, on each shipped environment: a typo in conf/full
    fails here, not on a cluster's first job."""
    from sweeplab.integration.registry import plan  # noqa: PLC0415

    monkeypatch.setattr(session, "_parameters", None)
    monkeypatch.chdir(kedro_project)
    monkeypatch.setenv("KEDRO_ENV", env)
    planned = plan(session.parameters(), discover())
    assert {family.name for family, _ in planned.values()} == set(discover())
    assert all(sweep.variants for _, sweep in planned.values())
