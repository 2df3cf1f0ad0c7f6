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


def test_training_runs_one_step_per_call_and_carries_the_sequences_until_they_halt(examples, monkeypatch):
    model = build(examples).train()
    steps = []
    original = TRM.step
    monkeypatch.setattr(TRM, "step", lambda self, *a: steps.append(1) or original(self, *a))
    rows = batch(examples)
    halt_bias(model, -10.0)  # never halts by itself: every sequence runs to halt_max_steps (3)
    shuffled = {k: v.flip(0) for k, v in rows.items()}
    for call, expected in enumerate([1, 2, 3, 1], start=1):
        metrics = trm_metrics(model, rows if call == 1 else shuffled)
        assert metrics["steps"].item() == expected and len(steps) == call, "one supervision step per call"
        if call in (2, 3):  # busy slots keep their query; the batch's rows for them go unused
            assert torch.equal(model.carry.rows["inputs"], rows["inputs"])
    assert torch.equal(model.carry.rows["inputs"], shuffled["inputs"]), "halted slots take the new queries"
    halt_bias(model, 10.0)  # halts after each step: every call starts fresh sequences
    trm_metrics(model, rows)
    assert model.carry.halted.all() and trm_metrics(model, rows)["steps"].item() == 1


def test_a_change_of_mode_drops_the_sequences_in_flight(examples):
    model = build(examples).train()
    trm_metrics(model, batch(examples))
    assert model.carry is not None
    model.eval()
    assert model.carry is None
    trm_metrics(model.train(), batch(examples))
    assert model.carry.steps.eq(1).all()


def test_exploration_makes_some_sequences_run_longer(examples):
    model = build(examples, halt_exploration=1.0, halt_max_steps=4).train()
    halt_bias(model, 10.0)
    torch.manual_seed(0)
    rows = batch(examples)
    trm_metrics(model, rows)
    minimum = model.carry.minimum.clone()
    assert not model.carry.halted.any() and set(minimum.tolist()) <= {2, 3, 4}, "each drew 2-4"
    halted_at = torch.zeros_like(minimum)
    for step in (2, 3, 4):
        trm_metrics(model, rows)
        halted_at = torch.where((halted_at == 0) & model.carry.halted, step, halted_at)
    assert torch.equal(halted_at, minimum), "each halted at its minimum"


def test_evaluation_runs_every_step_and_reports_where_it_would_halt(examples, monkeypatch):
    model = build(examples)
    halt_bias(model, 10.0)
    steps = []
    original = TRM.step
    monkeypatch.setattr(TRM, "step", lambda self, *a: steps.append(1) or original(self, *a))
    with torch.no_grad():
        metrics = trm_metrics(model.eval(), batch(examples, "eval"))
    assert len(steps) == 3 and metrics["steps"].item() == 1


def step_loss(logits, q, labels):
    valid = labels != data.PAD
    cells = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
    exact = ((logits.argmax(-1) == labels) | ~valid).all(1)
    halting = F.binary_cross_entropy_with_logits(q, exact.float(), reduction="none")
    return ((cells * valid).sum(1) / valid.sum(1) + halting).mean()


def test_training_optimises_one_step_and_evaluation_sums_every_step(examples):
    """Per sequence, the loss of a step is its cross-entropy over its cells plus the binary
    halting loss. A training call's objective is that of the one step it ran; evaluation
    reports the sum over all steps."""
    model = build(examples).train()
    halt_bias(model, -10.0)
    rows = batch(examples)
    metrics = trm_metrics(model, rows)
    x, _ = model.embed_inputs(rows)
    _, _, logits, q = model.step(*model.initial_state(x), x)
    torch.testing.assert_close(metrics["total_loss"], step_loss(logits, q, rows["labels"]))
    assert {"accuracy", "exact_accuracy", "steps", "q_halt_accuracy", "cond_norm", "cond_cosine"} <= set(metrics)

    model.eval()
    with torch.no_grad():
        metrics = trm_metrics(model, rows)
        x, _ = model.embed_inputs(rows)
        y, z = model.initial_state(x)
        expected = torch.zeros(())
        for _ in range(3):
            y, z, logits, q = model.step(y, z, x)
            expected = expected + step_loss(logits, q, rows["labels"])
    torch.testing.assert_close(metrics["total_loss"], expected)


def saved_bytes(model: TRM, rows: dict[str, torch.Tensor]) -> int:
    """What one training call keeps for its backward: the bytes of the tensors autograd saves."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        trm_metrics(model, rows)["total_loss"].backward()
    return total


def test_a_training_step_holds_the_activations_of_one_supervision_step(examples):
    """However many steps the sequences have run (or may run), a backward holds one step's
    graph: the carried state is detached."""
    rows = batch(examples)
    held = {}
    for max_steps in (2, 8):
        model = build(examples, halt_max_steps=max_steps).train()
        halt_bias(model, -10.0)
        held[max_steps] = [saved_bytes(model, rows) for _ in range(max_steps)]
    assert len({*held[2], *held[8]}) == 1, held


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
