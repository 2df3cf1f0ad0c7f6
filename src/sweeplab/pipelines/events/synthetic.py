"""A synthetic 4-tops-like event generator: the embedded default data source.

Physics it keeps, because the research questions depend on it:

- process-dependent multiplicities: 4-top events carry more jets and b-jets than ttH, ttW,
  ttWW or ttZ; ttW/ttWW carry more leptons, ttZ sometimes an opposite-sign lepton pair;
- steeply falling pT (a threshold plus an exponential tail, harder for 4-top events),
  |eta| < 2.5, phi uniform, E from pT, eta and a small mass;
- at most 18 objects kept, highest pT first, the rest padding (about half the slots);
- MET is the vector sum of invisible momentum: one neutrino per lepton (a leptonic W decay)
  near the lepton's direction, plus jet mismeasurement and unclustered noise. So MET is
  partly, not wholly, predictable from the visible objects.

Events are drawn in fixed blocks, each with its own child of ``SeedSequence(seed)``, so the
file is the same whatever the chunking and never has to fit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sweeplab.datasets.hdf5 import ArrayStream
from sweeplab.pipelines.events.format import N_COLUMNS, N_FEATURES, N_OBJECTS, PROCESSES

BLOCK = 10_000  # events per random block: part of the data's definition, do not change
MAX_SLOTS = 32  # objects drawn per event before keeping the 18 hardest

# per process (label 1..5): mean light jets, mean b-jets, mean leptons, jet pT scale (GeV)
_LIGHT_JETS = np.array([6.0, 4.5, 4.0, 4.5, 4.0])
_B_JETS = np.array([3.4, 3.0, 1.8, 1.9, 2.0])
_LEPTONS = np.array([0.8, 0.7, 1.2, 1.4, 0.9])
_JET_PT_SCALE = np.array([70.0, 55.0, 50.0, 55.0, 50.0])
_Z_TO_LEPTONS = 0.3  # fraction of ttZ events with an extra opposite-sign lepton pair
_PHOTONS = 0.15


def _eta(rng: np.random.Generator, shape: tuple[int, ...], width: float) -> np.ndarray:
    eta = rng.normal(0.0, width, shape)
    outside = np.abs(eta) >= 2.5
    eta[outside] = rng.uniform(-2.49, 2.49, outside.sum())
    return eta


def generate_block(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` events: X of shape (n, 92) float32 and labels y of shape (n,) int64."""
    y = rng.integers(1, len(PROCESSES) + 1, n)
    p = y - 1
    n_light = rng.poisson(_LIGHT_JETS[p])
    n_b = rng.poisson(_B_JETS[p])
    n_lep = rng.poisson(_LEPTONS[p]) + 2 * ((y == 5) & (rng.random(n) < _Z_TO_LEPTONS))
    n_gamma = rng.poisson(_PHOTONS, n)
    counts = np.stack([n_light, n_b, n_lep, n_gamma], 1)
    counts = np.minimum(counts, MAX_SLOTS // 4)  # keep the slot layout simple

    # slot k of an event holds: light jet, then b-jets, then leptons, then photons, then nothing
    k = np.arange(MAX_SLOTS)[None, :]
    edges = np.cumsum(counts, 1)
    category = (k >= edges[:, [0]]).astype(int) + (k >= edges[:, [1]]) + (k >= edges[:, [2]]) + (k >= edges[:, [3]])
    shape = (n, MAX_SLOTS)
    is_jet, is_b, is_lep, is_gamma = (category == c for c in range(4))

    jet_scale = _JET_PT_SCALE[p][:, None]
    pt = np.select(
        [is_jet, is_b, is_lep, is_gamma],
        [25 + rng.exponential(1.0, shape) * jet_scale,
         25 + rng.exponential(1.0, shape) * jet_scale * 1.1,
         10 + rng.exponential(35.0, shape),
         15 + rng.exponential(25.0, shape)],
        0.0,
    )
    eta = np.where(is_lep | is_gamma, _eta(rng, shape, 1.1), _eta(rng, shape, 1.4))
    phi = rng.uniform(-np.pi, np.pi, shape)
    mass = np.where(is_jet | is_b, pt * rng.uniform(0.05, 0.2, shape), np.where(is_lep, 0.05, 0.0))
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)

    lepton_type = rng.integers(3, 7, shape)  # e+, e-, mu-, mu+
    types = np.select([is_jet, is_b, is_lep, is_gamma], [1, 2, lepton_type, 7], 0)
    present = types > 0

    # invisible momentum: a neutrino per lepton near its direction, jet mismeasurement, noise
    nu_pt = np.where(is_lep, pt * rng.uniform(0.4, 1.2, shape), 0.0)
    nu_phi = phi + rng.normal(0.0, 0.7, shape)
    jet_error = np.where(is_jet | is_b, -pt * rng.normal(0.0, 0.15, shape), 0.0)
    met_x = (nu_pt * np.cos(nu_phi) + jet_error * np.cos(phi)).sum(1) + rng.normal(0, 15.0, n)
    met_y = (nu_pt * np.sin(nu_phi) + jet_error * np.sin(phi)).sum(1) + rng.normal(0, 15.0, n)

    # keep the 18 hardest objects, highest pT first; the rest are padding (all zeros)
    order = np.argsort(-np.where(present, pt, -1.0), axis=1, kind="stable")[:, :N_OBJECTS]
    take = lambda a: np.take_along_axis(a, order, 1)  # noqa: E731
    types, kept = take(types), take(present)
    features = np.stack([take(energy), take(pt), take(eta), take(phi)], -1) * kept[..., None]

    X = np.empty((n, N_COLUMNS), np.float32)
    X[:, :N_OBJECTS] = types
    X[:, N_OBJECTS] = np.hypot(met_x, met_y)
    X[:, N_OBJECTS + 1] = np.arctan2(met_y, met_x)
    X[:, N_OBJECTS + 2 :] = features.reshape(n, N_OBJECTS * N_FEATURES)
    return X, y.astype(np.int64)


def iter_event_blocks(n_events: int, seed: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(first_row, X, y)`` blocks; the same events for the same seed and count."""
    n_blocks = -(-n_events // BLOCK)
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n_blocks)):
        start = i * BLOCK
        X, y = generate_block(min(BLOCK, n_events - start), np.random.default_rng(child))
        yield start, X, y


def generate_events(params: dict) -> ArrayStream:
    """Node: the synthetic unsplit event file (``X``, ``y``) from ``events.synthetic``."""
    n_events, seed = int(params["n_events"]), int(params["seed"])
    if n_events < 1:
        raise ValueError(f"events.synthetic.n_events must be positive, got {n_events}")

    def blocks():
        for start, X, y in iter_event_blocks(n_events, seed):
            yield "X", start, X
            yield "y", start, y

    shapes = {"X": ((n_events, N_COLUMNS), np.float32), "y": ((n_events,), np.int64)}
    return ArrayStream(shapes, blocks, attrs={"source": "sweeplab synthetic", "seed": seed})
