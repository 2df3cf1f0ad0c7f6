"""Simple-shapes style data in two domains, and a target only their combination predicts.

Each sample has a shape category (3), position x, y, size, rotation, colour (RGB) and an
extra attribute ``u`` that only the attribute domain carries.

- ``attr`` (11 columns): one-hot category, x, y, cos and sin of rotation, R, G, B, and ``u``
  scaled to [-1, 1]. Size is *not* here.
- ``v`` (``visual_dim`` columns): a fixed, random, non-linear embedding (a two-layer tanh
  network, drawn once from ``embedding_seed``) of category, position, size, rotation and
  colour, plus Gaussian noise. ``u`` is *not* here. It stands in for the latent code of an
  image encoder: a smooth non-linear code of the visual attributes, which is what the
  original simple-shapes visual domain is (a VAE latent of rendered images).
- ``synergy``: ``(bin8(size) + bin8(u)) mod 8``. As size and ``u`` are independent and
  uniform, either alone leaves all 8 classes equally likely: only both domains together
  predict it.
"""

from __future__ import annotations

import numpy as np

FEATURES = ("category", "x", "y", "size", "rot_cos", "rot_sin", "r", "g", "b", "u")
ATTR_COLUMNS = ("cat_0", "cat_1", "cat_2", "x", "y", "rot_cos", "rot_sin", "r", "g", "b", "u")
SIZE_RANGE = (0.2, 0.6)
N_CLASSES = 8
ROLES = {
    "unique": {"attr": ["u"], "v": ["size"]},
    "redundant": ["category", "x", "y", "rot_cos", "rot_sin", "r", "g", "b"],
    "synergistic": {"target": "synergy", "from": ["size", "u"],
                    "rule": "(bin8(size) + bin8(u)) mod 8, bins equal-width over each range"},
}


def bin8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Equal-width bins 0..7 over [low, high]."""
    return np.clip(np.floor((values - low) / (high - low) * N_CLASSES), 0, N_CLASSES - 1).astype(np.int64)


def draw_attributes(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    rotation = rng.uniform(0, 2 * np.pi, n)
    return {
        "category": rng.integers(0, 3, n),
        "x": rng.uniform(0.1, 0.9, n), "y": rng.uniform(0.1, 0.9, n),
        "size": rng.uniform(*SIZE_RANGE, n),
        "rot_cos": np.cos(rotation), "rot_sin": np.sin(rotation),
        "r": rng.uniform(0, 1, n), "g": rng.uniform(0, 1, n), "b": rng.uniform(0, 1, n),
        "u": rng.uniform(0, 1, n),
    }


def attr_domain(a: dict[str, np.ndarray]) -> np.ndarray:
    onehot = np.eye(3)[a["category"]]
    rest = np.stack([a["x"], a["y"], a["rot_cos"], a["rot_sin"], a["r"], a["g"], a["b"], 2 * a["u"] - 1], 1)
    return np.concatenate([onehot, rest], 1).astype(np.float32)


def visual_domain(a: dict[str, np.ndarray], dim: int, embedding_seed: int, noise: float,
                  rng: np.random.Generator) -> np.ndarray:
    """The fixed non-linear visual code: tanh(W2 tanh(W1 s + b1)) + noise, s = visual attributes."""
    onehot = np.eye(3)[a["category"]]
    size01 = (a["size"] - SIZE_RANGE[0]) / (SIZE_RANGE[1] - SIZE_RANGE[0])
    s = np.concatenate([onehot, np.stack([a["x"], a["y"], size01, a["rot_cos"], a["rot_sin"],
                                          a["r"], a["g"], a["b"]], 1)], 1)
    s = (s - 0.5) * 2  # roughly centred, unit range
    weights = np.random.default_rng(embedding_seed)  # the same map for every sample and run
    w1 = weights.normal(0, 1.5 / np.sqrt(s.shape[1]), (s.shape[1], 4 * dim))
    b1 = weights.normal(0, 0.5, 4 * dim)
    w2 = weights.normal(0, 1.0 / np.sqrt(4 * dim), (4 * dim, dim))
    code = np.tanh(np.tanh(s @ w1 + b1) @ w2)
    return (code + rng.normal(0, noise, code.shape)).astype(np.float32)


def synergy_target(a: dict[str, np.ndarray]) -> np.ndarray:
    return (bin8(a["size"], *SIZE_RANGE) + bin8(a["u"], 0.0, 1.0)) % N_CLASSES
