"""A synthetic 4-tops-like event generator: the embedded default data source.

Physics it keeps, because the research questions depend on it:

- process-dependent multiplicities: 4-top events carry more jets and b-jets than ttH, ttW,
  ttWW or ttZ; ttW/ttWW carry more leptons, ttZ sometimes an opposite-sign lepton pair;
- steeply falling pT (a threshold plus an exponential tail, harder for 4-top events), E from
  pT, eta and a small mass;
- momentum balance: the hard process (every visible object plus one neutrino per lepton, from
  a leptonic W decay near the lepton's direction) recoils against one initial-state radiation
  jet, so everything produced sums to zero transverse momentum. Each hard particle absorbs the
  recoil in proportion to its pT;
- a detector: jet, lepton and photon pT resolution; objects lost outside |eta| < 2.5 (they
  escape like the neutrinos) or below the reconstruction thresholds (they go to an
  unclustered soft term, measured at half response, plus pile-up noise); MET is minus the
  vector sum of every reconstructed object and the soft term;
- at most 18 objects kept, highest reconstructed pT first, the rest padding (about half the
  slots). Objects beyond the 18th still entered MET, as in a real file.

So MET is close to, not equal to, minus the vector sum of the kept objects: the neutrinos,
lost objects, resolution, the soft term and the truncation separate them.

What it does not reproduce: matrix elements, resonance masses (no W, top or Z peaks), parton
showers, jet substructure, pile-up beyond a Gaussian term, or eta-dependent responses.

Events are drawn in fixed blocks, each with its own child of ``SeedSequence(seed)``, so the
file is the same whatever the chunking and never has to fit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sweeplab.datasets.hdf5 import ArrayStream
from sweeplab.pipelines.events.format import N_COLUMNS, N_FEATURES, N_OBJECTS, PROCESSES

BLOCK = 10_000  # events per random block: part of the data's definition, do not change
MAX_SLOTS = 32  # hard-process objects drawn per event, before the detector keeps the 18 hardest

# per process (label 1..5): mean light jets, mean b-jets, mean leptons, jet pT scale (GeV)
_LIGHT_JETS = np.array([8.0, 6.5, 6.0, 6.5, 6.0])
_B_JETS = np.array([3.4, 3.0, 1.8, 1.9, 2.0])
_LEPTONS = np.array([0.8, 0.7, 1.2, 1.4, 0.9])
_JET_PT_SCALE = np.array([70.0, 55.0, 50.0, 55.0, 50.0])
_Z_TO_LEPTONS = 0.3  # fraction of ttZ events with an extra opposite-sign lepton pair
_PHOTONS = 0.15
_ISR_PT = 30.0  # mean pT (GeV) of the initial-state radiation the hard system recoils against

# detector, per category (light jet, b-jet, lepton, photon)
_THRESHOLD = np.array([25.0, 25.0, 10.0, 15.0])  # GeV: softer objects are not reconstructed
_STOCHASTIC = np.array([0.6, 0.6, 0.0, 0.0])  # sigma(pT)/pT = stochastic/sqrt(pT) (+) constant
_CONSTANT = np.array([0.05, 0.05, 0.02, 0.03])
_SOFT_RESPONSE = 0.5  # fraction of the unreconstructed objects' momentum the soft term sees
_PILEUP = 25.0  # GeV per MET component


def _hard_process(n: int, y: np.ndarray, rng: np.random.Generator):
    """Visible objects (category 0..3, 4 = none) with true pT, eta, phi, and their neutrinos."""
    p = y - 1
    n_light = rng.poisson(_LIGHT_JETS[p])
    n_b = rng.poisson(_B_JETS[p])
    n_lep = rng.poisson(_LEPTONS[p]) + 2 * ((y == 5) & (rng.random(n) < _Z_TO_LEPTONS))
    n_gamma = rng.poisson(_PHOTONS, n)
    counts = np.minimum(np.stack([n_light, n_b, n_lep, n_gamma], 1), MAX_SLOTS // 4)
    # slot k of an event holds: light jets, then b-jets, then leptons, then photons, then nothing
    k = np.arange(MAX_SLOTS)[None, :]
    category = (k >= np.cumsum(counts, 1)[:, :, None]).sum(1)
    shape = (n, MAX_SLOTS)
    jet_scale = _JET_PT_SCALE[p][:, None]
    # spectra start below the thresholds, so that soft objects are lost to the detector
    pt = np.choose(category, [
        20 + rng.exponential(1.0, shape) * jet_scale,
        20 + rng.exponential(1.0, shape) * jet_scale * 1.1,
        7 + rng.exponential(35.0, shape),
        12 + rng.exponential(25.0, shape),
        np.zeros(shape),
    ])
    eta = rng.normal(0.0, np.where(category >= 2, 1.1, 1.4))
    phi = rng.uniform(-np.pi, np.pi, shape)
    is_lep = category == 2
    nu_pt = np.where(is_lep, pt * rng.uniform(0.4, 1.2, shape), 0.0)
    nu_phi = phi + rng.normal(0.0, 0.7, shape)
    return category, pt, eta, phi, nu_pt, nu_phi


def _recoil(pt: np.ndarray, phi: np.ndarray, nu_pt: np.ndarray, nu_phi: np.ndarray, isr: np.ndarray):
    """Shift every hard particle's transverse momentum, in proportion to its pT, so that the
    hard system's vector sum is minus the ISR's ``(n, 2)``; the visible objects' new (pT, phi).

    The neutrinos take their share of the recoil too, but are not returned: MET is measured
    as what the visible objects leave unbalanced.
    """
    vec = np.stack([pt * np.cos(phi), pt * np.sin(phi)], -1)  # (n, S, 2)
    nu_sum = np.stack([(nu_pt * np.cos(nu_phi)).sum(1), (nu_pt * np.sin(nu_phi)).sum(1)], -1)
    excess = vec.sum(1) + nu_sum + isr  # (n, 2): what the hard system must give up
    total = np.maximum(pt.sum(1) + nu_pt.sum(1), 1.0)[:, None, None]  # an empty event: no recoil
    vec = vec - pt[..., None] / total * excess[:, None]
    return np.hypot(vec[..., 0], vec[..., 1]), np.arctan2(vec[..., 1], vec[..., 0])


def generate_block(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` events: X of shape (n, 92) float32 and labels y of shape (n,) int64."""
    y = rng.integers(1, len(PROCESSES) + 1, n)
    category, pt, eta, phi, nu_pt, nu_phi = _hard_process(n, y, rng)

    # initial-state radiation: one jet the hard system recoils against
    isr_pt, isr_phi = rng.exponential(_ISR_PT, n), rng.uniform(-np.pi, np.pi, n)
    isr = np.stack([isr_pt * np.cos(isr_phi), isr_pt * np.sin(isr_phi)], -1)
    pt, phi = _recoil(pt, phi, nu_pt, nu_phi, isr)
    category = np.concatenate([category, np.zeros((n, 1), category.dtype)], 1)  # ISR: a light jet
    pt = np.concatenate([pt, isr_pt[:, None]], 1)
    phi = np.concatenate([phi, isr_phi[:, None]], 1)
    eta = np.concatenate([eta, rng.normal(0.0, 2.0, (n, 1))], 1)
    shape = pt.shape

    # the detector: resolution, acceptance, thresholds, the soft term and pile-up
    produced = category < 4
    c = np.minimum(category, 3)
    sigma = np.hypot(_STOCHASTIC[c] / np.sqrt(np.maximum(pt, 1.0)), _CONSTANT[c])
    measured = pt * np.maximum(1 + sigma * rng.standard_normal(shape), 0.0)
    accepted = produced & (np.abs(eta) < 2.5)
    reconstructed = accepted & (measured > _THRESHOLD[c])
    soft = np.where(accepted & ~reconstructed, _SOFT_RESPONSE * pt, 0.0)
    seen = np.where(reconstructed, measured, 0.0) + soft
    met_x = -(seen * np.cos(phi)).sum(1) + rng.normal(0.0, _PILEUP, n)
    met_y = -(seen * np.sin(phi)).sum(1) + rng.normal(0.0, _PILEUP, n)

    lepton_type = rng.integers(3, 7, shape)  # e+, e-, mu-, mu+
    types = np.choose(c, [1, 2, lepton_type, 7]) * reconstructed
    mass = np.where(c <= 1, measured * rng.uniform(0.05, 0.2, shape), np.where(c == 2, 0.05, 0.0))
    energy = np.sqrt((measured * np.cosh(eta)) ** 2 + mass**2)

    # keep the 18 hardest reconstructed objects, highest pT first; the rest are padding (zeros)
    order = np.argsort(-np.where(reconstructed, measured, -1.0), axis=1, kind="stable")[:, :N_OBJECTS]
    take = lambda a: np.take_along_axis(a, order, 1)  # noqa: E731
    types, kept = take(types), take(reconstructed)
    features = np.stack([take(energy), take(measured), take(eta), take(phi)], -1) * kept[..., None]

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
