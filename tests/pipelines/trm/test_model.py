"""The TRM on small real ARC inputs: the recursion's shapes and its no-gradient cycles,
halting, the conditioning (leave-one-out demonstrations, frozen and variational encoders),
the diagnostics, and a few real training steps through the shared loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sweeplab.pipelines.arc import data
from sweeplab.pipelines.trm import model as trm
from sweeplab.pipelines.trm.model import TRM, TRMModelConfig, trm_metrics

MAX_SIZE = 4


def tiny_task(seed: int, n_demos: int = 3) -> dict:
    """A puzzle whose rule is 'swap colours 1 and 2', on random 3x3 grids."""
    rng = np.random.default_rng(seed)
    swap = np.array([0, 2, 1, 3, 4, 5, 6, 7, 8, 9], dtype=np.int8)
    grids = [rng.integers(0, 4, size=(3, 3)).astype(np.int8) for _ in range(n_demos + 1)]
    pairs = [(g, swap[g]) for g in grids]
    return {"train": pairs[:n_demos], "test": pairs[n_demos:]}


@pytest.fixture(scope="module")
def examples():
    tasks = {"a": tiny_task(0), "b": tiny_task(1, n_demos=2)}
    copies = data.augment(sorted(tasks), n_augment=1, seed=0)
    return data.build_examples(tasks, copies, max_size=MAX_SIZE)


def build(examples, **changes) -> TRM:
    torch.manual_seed(0)
    cfg = TRMModelConfig(**({"conditioning": "standard", "hidden": 16, "heads": 2, "halt_max_steps": 3,
                             "halt_exploration": 0.0} | changes))
    demos = examples["demos"]
    return TRM(cfg, length=MAX_SIZE * MAX_SIZE, n_puzzles=len(demos["mask"]), demos=torch.tensor(demos["tokens"]),
               demo_mask=torch.tensor(demos["mask"]))  # copies: tests edit them


def batch(examples, split: str = "train") -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v) for k, v in examples[split].items()}


def test_a_step_keeps_the_shapes_and_hands_on_a_detached_state(examples):
    model = build(examples, prefix_len=2)
    rows = batch(examples)
    x, cond = model.embed_inputs(rows)
    b, length = rows["inputs"].shape
    assert x.shape == (b, 2 + length, 16) and cond.prefix.shape == (b, 2, 16) and cond.vector.shape == (b, 32)
    y, z = model.initial_state(x)
    y, z, logits, q = model.step(y, z, x)
    assert y.shape == z.shape == x.shape and not y.requires_grad and not z.requires_grad
    assert logits.shape == (b, length, data.VOCAB_SIZE) and q.shape == (b,)
    assert logits.requires_grad


def test_only_the_last_cycle_of_a_step_has_gradients(examples, monkeypatch):
    model = build(examples, H_cycles=3, L_cycles=2)
    calls = []
    original = TRM._net

    def spy(self, h, injection):
        calls.append(torch.is_grad_enabled())
        return original(self, h, injection)

    monkeypatch.setattr(TRM, "_net", spy)
    rows = batch(examples)
    x, _ = model.embed_inputs(rows)
    model.step(*model.initial_state(x), x)
    per_cycle = 2 + 1  # L_cycles updates of z, then y
    assert calls == [False] * (2 * per_cycle) + [True] * per_cycle


def test_no_gradient_reaches_the_earlier_cycles(examples):
    """The loss of a step differentiates through one cycle only: doubling H_cycles doubles the
    forward work but not the graph."""
    model = build(examples, H_cycles=4)
    rows = batch(examples)
    x, _ = model.embed_inputs(rows)
    _, _, logits, _ = model.step(*model.initial_state(x), x)
    graph_nodes = set()
    stack = [logits.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in graph_nodes:
            continue
        graph_nodes.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    attention_calls = sum("ScaledDotProduct" in type(n).__name__ for n in graph_nodes)
    layers = model.cfg.layers
    assert attention_calls == (model.cfg.L_cycles + 1) * layers + model.cfg.encoder_layers  # + the encoder's


def halt_bias(model: TRM, bias: float) -> None:
    with torch.no_grad():
        model.q_head.bias.fill_(bias)


def test_training_halts_where_the_q_head_says_so(examples, monkeypatch):
    model = build(examples)
    steps = []
    original = TRM.step
    monkeypatch.setattr(TRM, "step", lambda self, *a: steps.append(1) or original(self, *a))
    halt_bias(model, 10.0)  # "halt" everywhere: one step each
    metrics = trm_metrics(model.train(), batch(examples))
    assert len(steps) == 1 and metrics["steps"].item() == 1
    steps.clear()
    halt_bias(model, -10.0)  # never: every sequence runs to halt_max_steps
    metrics = trm_metrics(model, batch(examples))
    assert len(steps) == 3 and metrics["steps"].item() == 3


def test_exploration_makes_some_sequences_run_longer(examples):
    model = build(examples, halt_exploration=1.0, halt_max_steps=4)
    halt_bias(model, 10.0)
    torch.manual_seed(0)
    metrics = trm_metrics(model.train(), batch(examples))
    assert 2 <= metrics["steps"].item() <= 4  # each drew a minimum of 2-4 steps


def test_evaluation_runs_every_step_and_reports_where_it_would_halt(examples, monkeypatch):
    model = build(examples)
    halt_bias(model, 10.0)
    steps = []
    original = TRM.step
    monkeypatch.setattr(TRM, "step", lambda self, *a: steps.append(1) or original(self, *a))
    with torch.no_grad():
        metrics = trm_metrics(model.eval(), batch(examples, "eval"))
    assert len(steps) == 3 and metrics["steps"].item() == 1


def test_the_loss_sums_every_supervision_step(examples):
    """Never halting, the objective is the sum over the steps of each step's cross-entropy
    (per sequence, over its cells) and binary halting loss."""
    model = build(examples).train()
    halt_bias(model, -10.0)
    rows = batch(examples)
    metrics = trm_metrics(model, rows)
    labels, valid = rows["labels"], rows["labels"] != data.PAD
    x, _ = model.embed_inputs(rows)
    y, z = model.initial_state(x)
    expected = torch.zeros(())
    for _ in range(3):
        y, z, logits, q = model.step(y, z, x)
        cells = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
        exact = ((logits.argmax(-1) == labels) | ~valid).all(1)
        halting = F.binary_cross_entropy_with_logits(q, exact.float(), reduction="none")
        expected = expected + ((cells * valid).sum(1) / valid.sum(1) + halting).mean()
    torch.testing.assert_close(metrics["total_loss"], expected)
    assert {"accuracy", "exact_accuracy", "steps", "q_halt_accuracy", "cond_norm", "cond_cosine"} <= set(metrics)


def test_an_encoder_never_sees_the_query_among_the_demonstrations(examples):
    model = build(examples).eval()
    rows = batch(examples)
    first = (rows["puzzle"] == 0) & (rows["query_demo"] == 0)  # puzzle 0's demonstration 0 as the query
    before = model.conditioning(rows["puzzle"][first], rows["query_demo"][first]).vector
    as_test = model.conditioning(rows["puzzle"][first], torch.tensor([-1])).vector
    model.conditioning.demos[0, 0] = torch.randint(2, 12, model.conditioning.demos[0, 0].shape)  # change that demo
    after = model.conditioning(rows["puzzle"][first], rows["query_demo"][first]).vector
    changed = model.conditioning(rows["puzzle"][first], torch.tensor([-1])).vector
    torch.testing.assert_close(before, after)  # left out: the change is not seen
    assert not torch.allclose(as_test, changed)  # a test query sees every demonstration


@pytest.mark.parametrize("conditioning", ["standard", "lpn_standard", "lpn_variational"])
@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_every_encoder_gives_finite_conditioning_even_with_no_demonstration_left(examples, conditioning, pooling):
    model = build(examples, conditioning=conditioning, pooling=pooling).train()
    puzzle_b = int(np.flatnonzero(examples["demos"]["mask"].sum(1) == 2)[0])
    model.conditioning.demo_mask[puzzle_b, 1] = False  # one demonstration, which is the query
    cond = model.conditioning(torch.tensor([puzzle_b, 0]), torch.tensor([0, -1]))
    assert torch.isfinite(cond.vector).all() and torch.isfinite(cond.kl)
    if conditioning == "lpn_variational":
        assert cond.kl > 0


def test_the_variational_encoder_samples_in_training_only(examples):
    model = build(examples, conditioning="lpn_variational")
    rows = batch(examples)
    train_a, train_b = (model.train().conditioning(rows["puzzle"], rows["query_demo"]).vector for _ in range(2))
    eval_a, eval_b = (model.eval().conditioning(rows["puzzle"], rows["query_demo"]).vector for _ in range(2))
    assert not torch.allclose(train_a, train_b)
    torch.testing.assert_close(eval_a, eval_b)


def test_a_frozen_encoder_has_nothing_to_train(examples):
    model = build(examples, freeze_encoder=True)
    assert not any(p.requires_grad for p in model.conditioning.parameters())
    assert model.parameter_groups()["trm"] and all(p.requires_grad for p in model.parameter_groups()["trm"])


def test_zero_puzzle_embeddings_give_zero_similarity_not_nan(examples):
    model = build(examples, conditioning="puzzle_embedding")
    metrics = trm_metrics(model.train(), batch(examples))
    assert metrics["cond_norm"].item() == 0.0 and metrics["cond_cosine"].item() == 0.0


def test_cosine_counts_pairs_of_different_puzzles_only():
    vector = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert trm.cosine_across_puzzles(vector, torch.tensor([0, 0, 1])).item() == 0.0
    assert trm.cosine_across_puzzles(vector, torch.tensor([0, 1, 2])).item() == pytest.approx(1 / 3)


def test_the_config_rejects_what_cannot_run():
    with pytest.raises(Exception, match="hidden: got 30; expected a multiple of heads"):
        TRMModelConfig(conditioning="standard", hidden=30, heads=4)
    with pytest.raises(Exception, match="freeze_encoder: a puzzle embedding has no encoder"):
        TRMModelConfig(conditioning="puzzle_embedding", freeze_encoder=True)
    assert dataclasses.replace(TRMModelConfig(conditioning="standard"), positions="learned").positions == "learned"


def test_one_supervision_step_leaves_nothing_to_explore(examples):
    model = build(examples, halt_max_steps=1, halt_exploration=0.5)
    assert trm_metrics(model.train(), batch(examples))["steps"].item() == 1
