import pytest

from sweeplab import sweeps as sweeps_module
from sweeplab.config import ConfigError
from sweeplab.integration import session
from sweeplab.pipelines.ae.pipeline import FAMILY
from sweeplab.sweeps import SweepError, expand, flatten_grid, parse_values, resolve_variant_config

SPEC = {"family": "ae", "grid": {"model.latent_space": ["none", "linear", "vq"], "loss": {"globals_beta": [0, 1, 10]}},
        "labels": {"loss.globals_beta": "beta"}, "seeds": [0]}


def test_grid_times_seeds_with_readable_names():
    variants = expand("ae_sweep", {**SPEC, "seeds": [0, 1]})
    assert len(variants) == 18
    names = [v.name for v in variants]
    assert names[:3] == ["none_beta0_s0", "none_beta0_s1", "none_beta1_s0"]
    assert "vq_beta10_s1" in names and all("." not in n for n in names)
    v = variants[-1]
    assert v.condition == {"model.latent_space": "vq", "loss.globals_beta": 10} and v.seed == 1
    assert v.namespace == "ae_sweep.vq_beta10_s1"


def test_command_line_value_lists():
    assert parse_values("0 1 2", "x") == [0, 1, 2]
    assert parse_values("none vq", "x") == ["none", "vq"]
    assert parse_values("1e-3 0.5 true", "x") == [0.001, 0.5, True]
    assert parse_values("vq", "x") == ["vq"]
    assert parse_values("8", "x") == [8], "a single value from the command line is parsed too"
    assert len(expand("s", {**SPEC, "seeds": "3 4 5"})) == 27


def test_nested_override_wins_over_dotted_key():
    grid = {"model.latent_space": ["none", "vq"], "model": {"latent_space": "linear"}}
    assert flatten_grid(grid) == {"model.latent_space": ["linear"]}


@pytest.mark.parametrize(("spec", "message"), [
    ({**SPEC, "seeds": []}, "expands to zero variants: 'seeds' is empty"),
    ({**SPEC, "grid": {"model.latent_space": []}}, "grid axis 'model.latent_space' has no values"),
    ({**SPEC, "seeds": [0, 0]}, "repeated seed"),
    ({"family": "ae"}, "needs a 'grid'"),
    ({**SPEC, "seed": [1]}, r"ae_sweep.seed: unknown key; did you mean ae_sweep.seeds\?"),
    ({**SPEC, "labels": {"loss.beta": "b"}}, r"ae_sweep.labels.loss.beta: not a grid axis"),
    ({**SPEC, "seeds": [0, 1.5]}, r"ae_sweep.seeds: got 1.5; expected non-negative integers"),
])
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        expand("ae_sweep", spec)


def test_resolved_config_and_its_hash(ae_defaults):
    a, b = expand("ae_sweep", {**SPEC, "seeds": [0, 1]})[:2]
    ra, rb = resolve_variant_config(ae_defaults, family=FAMILY, variant=a), resolve_variant_config(ae_defaults, family=FAMILY, variant=b)
    assert ra["config"]["model"]["latent_space"] == "none" and ra["config"]["loss"]["globals_beta"] == 0
    assert ra["config_hash"] != rb["config_hash"], "the seed is part of what a run computes"
    assert ra["config_hash"] == resolve_variant_config(ae_defaults, family=FAMILY, variant=a)["config_hash"]


def test_unknown_grid_key_and_bad_values_are_named(ae_defaults):
    (v,) = expand("s", {"family": "ae", "grid": {"model.latnt_space": ["vq"]}})
    with pytest.raises(SweepError, match=r"s.grid.model.latnt_space: not a parameter of the family defaults; "
                                         r"did you mean model.latent_space\?"):
        resolve_variant_config(ae_defaults, family=FAMILY, variant=v)
    (v,) = expand("s", {"family": "ae", "grid": {"model.latent_space": ["vqq"]}})
    with pytest.raises(SweepError, match=r"s.grid.model.latent_space: got 'vqq'; expected one of none \| linear \| vq"):
        resolve_variant_config(ae_defaults, family=FAMILY, variant=v)
    with pytest.raises((ConfigError, SweepError), match=r"ae.trainer.epochz: unknown key; did you mean ae.trainer.epochs\?"):
        (v,) = expand("s", {"family": "ae", "grid": {"model.latent_space": ["vq"]}})
        bad = {**ae_defaults, "trainer": {**ae_defaults["trainer"], "epochz": 3}}
        resolve_variant_config(bad, family=FAMILY, variant=v)


def test_without_a_session_the_project_conf_and_kedro_env_are_read(kedro_project, monkeypatch):
    """E.g. a notebook that imports the pipelines before any session recorded parameters."""
    monkeypatch.setattr(session, "_parameters", None)
    monkeypatch.chdir(kedro_project)
    monkeypatch.setenv("KEDRO_ENV", "full")
    params = session.parameters()
    assert params["events"]["source"] == "split" and params["ae"]["trainer"]["epochs"] == 20
    assert params["ae"]["model"]["latent_space"] == "linear", "full overrides single keys of base"


def test_resolving_many_variants_at_once_gives_each_variant_s_own_config(ae_defaults):
    spec = {"family": "ae", "grid": {"model.latent_space": ["none", "vq"], "loss.globals_beta": [0, 1]},
            "seeds": [0, 1, 2], "resume": {"code": "keep"}}
    variants = expand("s", spec)
    assert sweeps_module.resolve_variant_configs(ae_defaults, family=FAMILY, variants=variants) == [
        resolve_variant_config(ae_defaults, family=FAMILY, variant=v) for v in variants]
    assert {v.resume_code for v in variants} == {"keep"}
