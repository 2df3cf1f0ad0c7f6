"""The Tiny Recursive Model (Jolicoeur-Martineau, 2025) and the ways it is told which puzzle
it is solving. Reads bottom-up: layers, the conditioning (a learned embedding per puzzle, or
an encoder of the puzzle's demonstration pairs), the recursion, then deep supervision with
halting, which gives the loss and the metrics.

Shapes: B queries, L = max_size**2 grid tokens, P prefix (conditioning) tokens, S = P + L,
H hidden, D demonstrations per puzzle.

One network of ``layers`` blocks carries a latent z and an answer y. A cycle refines z
``L_cycles`` times from (z, y + x), then y once from (y, z); a supervision step runs
``H_cycles - 1`` cycles without gradients and the last one with them, and hands the state on
detached. Deep supervision repeats steps, each with its own loss, until a Q head says halt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.config import (
    ConfigError,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)
from sweeplab.pipelines.arc.data import PAD, VOCAB_SIZE

Q_BIAS = -5.0  # the Q head starts out saying "continue" (TRM's initialisation)


@dataclass(frozen=True)
class TRMModelConfig:
    conditioning: Literal["puzzle_embedding", "standard", "lpn_standard", "lpn_variational"]
    hidden: PositiveInt = 64
    heads: PositiveInt = 4
    expansion: PositiveFloat = 4.0  # SwiGLU width over hidden (2/3 of it per branch)
    layers: PositiveInt = 2
    H_cycles: PositiveInt = 2  # noqa: N815 - the paper's names
    L_cycles: PositiveInt = 2  # noqa: N815
    halt_max_steps: PositiveInt = 4
    halt_exploration: Fraction = 0.1  # share of training sequences made to run a random minimum of steps
    positions: Literal["rope", "learned"] = "rope"
    prefix_len: PositiveInt = 1  # conditioning tokens before the grid
    puzzle_emb_lr: PositiveFloat = 0.2  # puzzle_embedding: the table's own learning rate
    encoder_layers: PositiveInt = 2  # the demonstration encoders' depth
    set_layers: NonNegativeInt = 1  # lpn_standard: self-attention layers across a puzzle's demonstrations
    pooling: Literal["mean", "attention"] = "mean"  # over tokens (standard) and over demonstrations
    freeze_encoder: bool = False  # random and frozen (the E_diag1 diagnosis)
    kl_weight: NonNegativeFloat = 1.0e-3  # lpn_variational

    def __post_init__(self) -> None:
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ConfigError(f"hidden: got {self.hidden}; expected a multiple of heads ({self.heads}) "
                              "with an even width per head (RoPE rotates pairs)")
        if self.freeze_encoder and self.conditioning == "puzzle_embedding":
            raise ConfigError("freeze_encoder: a puzzle embedding has no encoder to freeze")


# ----------------------------------------------------------------------------------------------
# layers


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rope_tables(length: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()  # (S, head_dim / 2) each


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair of x's last dimension (B, heads, S, head_dim) by its position's angle."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class Block(nn.Module):
    """Non-causal self-attention and a SwiGLU MLP, each followed by RMSNorm (post-norm, as TRM)."""

    def __init__(self, hidden: int, heads: int, expansion: float):
        super().__init__()
        self.heads = heads
        inner = max(1, round(expansion * hidden * 2 / 3))
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.out = nn.Linear(hidden, hidden, bias=False)
        self.gate_up = nn.Linear(hidden, 2 * inner, bias=False)
        self.down = nn.Linear(inner, hidden, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: (B, S) True where a key may be attended to."""
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        attn_mask = None if mask is None else mask[:, None, None, :]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = rms_norm(x + self.out(attended.transpose(1, 2).reshape(b, s, h)))
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return rms_norm(x + self.down(F.silu(gate) * up))


class Stack(nn.Module):
    def __init__(self, n: int, hidden: int, heads: int, expansion: float):
        super().__init__()
        self.blocks = nn.ModuleList(Block(hidden, heads, expansion) for _ in range(n))

    def forward(self, x, rope=None, mask=None):
        for block in self.blocks:
            x = block(x, rope, mask)
        return x


class AttentionPool(nn.Module):
    """A learned query attending over a set: (B, N, H) with mask (B, N) -> (B, H)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(hidden) / math.sqrt(hidden))
        self.key = nn.Linear(hidden, hidden, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = (self.key(x) @ self.query) / math.sqrt(x.shape[-1])
        weights = torch.softmax(scores.masked_fill(~mask, -torch.inf), dim=-1).nan_to_num(0.0)  # none seen: 0
        return (weights.unsqueeze(-1) * x).sum(1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of (B, N, H) where mask (B, N) holds; zeros where nothing does."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def pool(x: torch.Tensor, mask: torch.Tensor, attention: AttentionPool | None) -> torch.Tensor:
    return masked_mean(x, mask) if attention is None else attention(x, mask)


# ----------------------------------------------------------------------------------------------
# conditioning: which puzzle the query belongs to, as P prefix tokens


class Conditioning(NamedTuple):
    prefix: torch.Tensor  # (B, P, H)
    vector: torch.Tensor  # (B, P * H): what the diagnostics measure
    kl: torch.Tensor  # scalar; 0 unless variational


class PuzzleEmbedding(nn.Module):
    """One learned vector per puzzle id, zero at the start (as TRM): it can only memorise."""

    def __init__(self, cfg: TRMModelConfig, n_puzzles: int):
        super().__init__()
        self.prefix_len, self.hidden = cfg.prefix_len, cfg.hidden
        self.table = nn.Embedding(n_puzzles, cfg.prefix_len * cfg.hidden)
        nn.init.zeros_(self.table.weight)

    def forward(self, puzzle: torch.Tensor, query_demo: torch.Tensor) -> Conditioning:
        vector = self.table(puzzle)
        return Conditioning(vector.view(-1, self.prefix_len, self.hidden), vector, vector.new_zeros(()))


def visible_demos(demo_mask: torch.Tensor, puzzle: torch.Tensor, query_demo: torch.Tensor) -> torch.Tensor:
    """(B, D): the demonstrations an encoder may see for each query: its puzzle's, less the
    query itself when it is one (else the encoder could copy the answer)."""
    slots = torch.arange(demo_mask.shape[1], device=demo_mask.device)
    return demo_mask[puzzle] & (slots != query_demo.unsqueeze(1))  # a query that is no demo (-1) hides none


class DemoEncoder(nn.Module):
    """Conditioning computed from the query's puzzle's demonstration pairs, the query itself
    left out when it is one of them.

    - ``standard``: a grid transformer over each pair (input and output tokens, marked by a
      segment embedding), pooled over its tokens, then over the demonstrations;
    - ``lpn_standard``: a CLS token per pair, then a set transformer across the demonstrations;
    - ``lpn_variational``: from each pair's CLS token a mean and log-variance, a sample (the
      mean at evaluation), KL to N(0, I), and the mean over the demonstrations.

    Each distinct puzzle of a batch is encoded once; only its pooling differs per query.
    """

    def __init__(self, cfg: TRMModelConfig, demos: torch.Tensor, demo_mask: torch.Tensor):
        super().__init__()
        self.cfg = cfg
        h, length = cfg.hidden, demos.shape[-1]
        self.register_buffer("demos", demos, persistent=False)  # (puzzles, D, 2, L): data, not weights
        self.register_buffer("demo_mask", demo_mask, persistent=False)
        self.token = nn.Embedding(VOCAB_SIZE, h)
        self.segment = nn.Embedding(2, h)  # input grid, output grid
        self.position = nn.Embedding(length, h)
        cls = cfg.conditioning != "standard"
        self.cls = nn.Parameter(torch.randn(h) / math.sqrt(h)) if cls else None
        self.pair = Stack(cfg.encoder_layers, h, cfg.heads, cfg.expansion)
        attention = cfg.pooling == "attention"
        self.token_pool = AttentionPool(h) if attention and not cls else None
        self.across = Stack(cfg.set_layers, h, cfg.heads, cfg.expansion) if cfg.conditioning == "lpn_standard" else None
        self.demo_pool = AttentionPool(h) if attention and cfg.conditioning != "lpn_variational" else None
        self.variational = nn.Linear(h, 2 * h) if cfg.conditioning == "lpn_variational" else None
        self.project = nn.Linear(h, cfg.prefix_len * h)
        if cfg.freeze_encoder:
            self.requires_grad_(False)

    def encode_pairs(self, tokens: torch.Tensor) -> torch.Tensor:
        """(M, 2, L) pairs -> (M, H): one vector per pair."""
        m, _, length = tokens.shape
        x = self.token(tokens) + self.segment.weight[:, None, :] + self.position.weight
        x, keep = x.reshape(m, 2 * length, -1), (tokens != PAD).reshape(m, 2 * length)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(m, 1, -1), x], 1)
            keep = torch.cat([keep.new_ones(m, 1), keep], 1)
            return self.pair(x, mask=keep)[:, 0]
        return pool(self.pair(x, mask=keep), keep, self.token_pool)

    def forward(self, puzzle: torch.Tensor, query_demo: torch.Tensor) -> Conditioning:
        # Only the batch's distinct puzzles' real demonstrations are encoded: ARC's puzzles hold
        # 2 to 10, so padding slots would be most of the encoder's work. Finding them is the one
        # place a training step waits for the device (the two lines below), by design.
        puzzles, row = torch.unique(puzzle, return_inverse=True)
        real = self.demo_mask[puzzles].nonzero(as_tuple=True)  # (puzzle, slot) of each real pair
        encoded = self.demos.new_zeros((len(puzzles), self.demo_mask.shape[1], self.cfg.hidden), dtype=torch.float32)
        encoded[real] = self.encode_pairs(self.demos[puzzles][real])  # (U, D, H)
        per_query, seen = encoded[row], visible_demos(self.demo_mask, puzzle, query_demo)  # (B, D, H), (B, D)
        kl = per_query.new_zeros(())
        if self.variational is not None:
            mu, logvar = self.variational(per_query).chunk(2, dim=-1)
            sample = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
            kl_demo = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)  # (B, D)
            kl = (kl_demo * seen).sum() / seen.sum().clamp(min=1)
            pooled = masked_mean(sample, seen)
        else:
            if self.across is not None:
                per_query = self.across(per_query, mask=seen | ~seen.any(1, keepdim=True))
            pooled = pool(per_query, seen, self.demo_pool)
        vector = self.project(pooled)
        return Conditioning(vector.view(len(puzzle), self.cfg.prefix_len, -1), vector, kl)


# ----------------------------------------------------------------------------------------------
# the recursion


class TRM(nn.Module):
    def __init__(self, cfg: TRMModelConfig, *, length: int, n_puzzles: int, demos: torch.Tensor,
                 demo_mask: torch.Tensor):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.embed_scale = math.sqrt(h)
        self.embed = nn.Embedding(VOCAB_SIZE, h)
        nn.init.normal_(self.embed.weight, std=1 / self.embed_scale)
        self.conditioning = (PuzzleEmbedding(cfg, n_puzzles) if cfg.conditioning == "puzzle_embedding"
                             else DemoEncoder(cfg, torch.as_tensor(demos), torch.as_tensor(demo_mask, dtype=torch.bool)))
        seq = cfg.prefix_len + length
        if cfg.positions == "learned":
            self.position = nn.Embedding(seq, h)
            nn.init.normal_(self.position.weight, std=1 / self.embed_scale)
        else:
            cos, sin = rope_tables(seq, h // cfg.heads)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.net = Stack(cfg.layers, h, cfg.heads, cfg.expansion)
        self.lm_head = nn.Linear(h, VOCAB_SIZE, bias=False)
        self.q_head = nn.Linear(h, 1)
        nn.init.zeros_(self.q_head.weight)
        nn.init.constant_(self.q_head.bias, Q_BIAS)
        # the starting answer and latent: fixed random vectors, as in TRM (seeded with the model)
        self.register_buffer("y_init", nn.init.trunc_normal_(torch.empty(h), std=1.0))
        self.register_buffer("z_init", nn.init.trunc_normal_(torch.empty(h), std=1.0))
        self.carry: Carry | None = None  # the sequences in flight during training (``train_step``)

    def train(self, mode: bool = True) -> TRM:
        """A change of mode (an epoch's start, an evaluation) drops the sequences in flight."""
        self.carry = None
        return super().train(mode)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Two named groups: the conditioning (embedding table or encoder) and the TRM itself."""
        own = {id(p) for p in self.conditioning.parameters()}
        return {"conditioning": list(self.conditioning.parameters()),
                "trm": [p for p in self.parameters() if id(p) not in own]}

    def embed_inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Conditioning]:
        """x: (B, S, H), the conditioning prefix then the input grid's tokens."""
        cond = self.conditioning(batch["puzzle"], batch["query_demo"])
        x = torch.cat([cond.prefix, self.embed_scale * self.embed(batch["inputs"])], 1)
        if self.cfg.positions == "learned":
            x = (x + self.embed_scale * self.position.weight) / math.sqrt(2)
        return x, cond

    def initial_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.y_init.expand_as(x), self.z_init.expand_as(x)

    def _net(self, h: torch.Tensor, injection: torch.Tensor) -> torch.Tensor:
        rope = None if self.cfg.positions == "learned" else (self.rope_cos, self.rope_sin)
        return self.net(h + injection, rope)

    def _cycle(self, y: torch.Tensor, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for _ in range(self.cfg.L_cycles):
            z = self._net(z, y + x)
        return self._net(y, z), z

    def step(self, y: torch.Tensor, z: torch.Tensor, x: torch.Tensor):
        """One supervision step: (y, z) detached for the next step, logits (B, L, V), q (B,)."""
        with torch.no_grad():
            for _ in range(self.cfg.H_cycles - 1):
                y, z = self._cycle(y, z, x)
        y, z = self._cycle(y, z, x)
        prefix = self.cfg.prefix_len
        return y.detach(), z.detach(), self.lm_head(y[:, prefix:]), self.q_head(y[:, 0]).squeeze(-1)


# ----------------------------------------------------------------------------------------------
# deep supervision, halting, loss and metrics


def cosine_across_puzzles(vector: torch.Tensor, puzzle: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity of the conditioning between queries of different puzzles; 0 for
    zero vectors (a fresh puzzle embedding), never NaN."""
    unit = vector / vector.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    similar = unit @ unit.T
    other = puzzle[:, None] != puzzle[None, :]
    return (similar * other).sum() / other.sum().clamp(min=1)


class Carry(NamedTuple):
    """The sequences in flight between training steps, one per batch slot, all detached."""

    rows: dict[str, torch.Tensor]  # each slot's query: inputs, labels, puzzle, query_demo
    y: torch.Tensor  # (B, S, H)
    z: torch.Tensor  # (B, S, H)
    steps: torch.Tensor  # (B,) supervision steps it has run
    minimum: torch.Tensor  # (B,) steps it must run before it may halt (exploration)
    halted: torch.Tensor  # (B,) done: the next batch's query takes the slot


def scored(logits: torch.Tensor, q: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per sequence: cross-entropy over the output's cells (padding ignored), the Q logit's
    binary loss against "the whole answer is right", cells right, whole answer right."""
    valid = labels != PAD
    n_valid = valid.sum(1).clamp(min=1)
    cells = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
    right = (logits.argmax(-1) == labels) & valid
    exact = right.sum(1) == valid.sum(1)
    return {"lm_loss": (cells * valid).sum(1) / n_valid,
            "q_loss": F.binary_cross_entropy_with_logits(q, exact.float(), reduction="none"),
            "accuracy": right.sum(1) / n_valid, "exact": exact, "says_halt": q.detach() > 0}


def summarised(per: dict[str, torch.Tensor], steps: torch.Tensor, cond: Conditioning,
               batch: dict[str, torch.Tensor], total: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "total_loss": total,
        "loss": (per["lm_loss"] + per["q_loss"]).detach().mean(),
        "lm_loss": per["lm_loss"].detach().mean(),
        "accuracy": per["accuracy"].mean(),
        "exact_accuracy": per["exact"].float().mean(),
        "steps": steps.float().mean(),
        "q_halt_accuracy": (per["says_halt"] == per["exact"]).float().mean(),
        "kl": cond.kl.detach(),
        "cond_norm": cond.vector.detach().norm(dim=-1).mean(),
        "cond_cosine": cosine_across_puzzles(cond.vector.detach(), batch["puzzle"]),
    }


def trm_metrics(model: TRM, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Training: one supervision step of the sequences in flight (``train_step``).
    Evaluation: every query runs all ``halt_max_steps`` steps, as in TRM, and is scored on its
    final answer; ``steps`` is where its Q head would have halted, and ``total_loss`` sums
    every step's loss."""
    if model.training:
        return train_step(model, batch)
    cfg = model.cfg
    x, cond = model.embed_inputs(batch)
    y, z = model.initial_state(x)
    b = len(batch["labels"])
    would_halt = torch.full((b,), cfg.halt_max_steps, device=x.device)
    said_halt = torch.zeros(b, dtype=torch.bool, device=x.device)
    total = x.new_zeros(())
    for step in range(1, cfg.halt_max_steps + 1):
        y, z, logits, q = model.step(y, z, x)
        per = scored(logits, q, batch["labels"])
        total = total + (per["lm_loss"] + per["q_loss"]).sum() / b
        would_halt = torch.where(per["says_halt"] & ~said_halt, step, would_halt)
        said_halt = said_halt | per["says_halt"]
    if cfg.conditioning == "lpn_variational":
        total = total + cfg.kl_weight * cond.kl
    return summarised(per, would_halt.float(), cond, batch, total)


def train_step(model: TRM, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One optimiser step's worth of TRM training: each slot of the batch holds a sequence in
    flight (``model.carry``); a slot whose sequence halted takes this batch's query in its
    place, from the initial state; every slot then runs one supervision step with gradients,
    and the loss is that step's. A sequence halts when its Q logit is above 0 (after its
    exploration minimum: ``halt_exploration`` of new sequences draw 2 to ``halt_max_steps``)
    or at ``halt_max_steps``. The state carried to the next step is detached, so a step's
    activations are all a backward holds, however many steps a sequence runs; a batch's
    queries for slots still busy are not used, as in TRM.

    The carry lives on the model between calls and goes with a change of mode (``TRM.train``):
    each epoch starts with fresh sequences, so a run resumed at an epoch continues identically.
    Training metrics are this step's, over every slot."""
    cfg = model.cfg
    b = len(batch["labels"])
    carry = model.carry
    fresh = carry is None or len(carry.steps) != b  # the epoch's first batch, or its short last one
    new = torch.ones(b, dtype=torch.bool, device=batch["labels"].device) if fresh else carry.halted
    rows = batch if fresh else {k: torch.where(new.view(-1, *[1] * (v.ndim - 1)), v, carry.rows[k])
                                for k, v in batch.items()}
    x, cond = model.embed_inputs(rows)
    y, z = model.initial_state(x)
    if not fresh:
        keep = ~new[:, None, None]
        y, z = torch.where(keep, carry.y, y), torch.where(keep, carry.z, z)
    steps = torch.zeros(b, dtype=torch.long, device=x.device) if fresh else torch.where(new, 0, carry.steps)
    drawn = torch.ones(b, dtype=torch.long, device=x.device)
    if cfg.halt_exploration > 0 and cfg.halt_max_steps > 1:
        explore = torch.rand(b, device=x.device) < cfg.halt_exploration
        drawn = torch.where(explore, torch.randint_like(drawn, 2, cfg.halt_max_steps + 1), drawn)
    minimum = drawn if fresh else torch.where(new, drawn, carry.minimum)

    y, z, logits, q = model.step(y, z, x)
    steps = steps + 1
    per = scored(logits, q, rows["labels"])
    total = (per["lm_loss"] + per["q_loss"]).mean()
    if cfg.conditioning == "lpn_variational":
        total = total + cfg.kl_weight * cond.kl
    halted = (steps >= cfg.halt_max_steps) | (per["says_halt"] & (steps >= minimum))
    model.carry = Carry(rows, y, z, steps, minimum, halted)
    return summarised(per, steps, cond, rows, total)
