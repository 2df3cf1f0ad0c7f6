import numpy as np

from sweeplab.datasets.hdf5 import H5File
from sweeplab.pipelines.events.format import (
    MET,
    METPHI,
    N_COLUMNS,
    N_OBJECTS,
    OBJECT_TYPES,
    PROCESSES,
    check_labels,
    check_rows,
    object_features,
    object_types,
)
from sweeplab.pipelines.events.synthetic import generate_block, generate_events, iter_event_blocks


def test_file_has_the_real_format(unsplit_file):
    f = H5File(unsplit_file)
    assert sorted(f.keys()) == ["X", "y"]
    X, y = f.read("X"), f.read("y")
    assert X.shape == (3000, N_COLUMNS) and y.shape == (3000,)
    check_rows(X, "synthetic")
    assert set(np.unique(check_labels(y, "synthetic"))) == set(PROCESSES)
    assert set(np.unique(object_types(X)).astype(int)) <= set(OBJECT_TYPES)


def test_objects_are_physical():
    X, _ = generate_block(5000, np.random.default_rng(0))
    types, feats = object_types(X), object_features(X)
    real = types > 0
    assert 0.4 < 1 - real.mean() < 0.65, "about half the slots are padding"
    assert (feats[~real] == 0).all(), "padding slots are all zeros"
    pt, eta = feats[..., 1], feats[..., 2]
    assert (np.abs(eta[real]) < 2.5).all()
    assert (feats[..., 0][real] >= pt[real] - 1e-3).all(), "E >= pT"
    # pT ordered, hardest first, and steeply falling: the median far below the 99th percentile
    assert (np.diff(np.where(real, pt, -1), axis=1) <= 1e-4).all()
    counts, _ = np.histogram(pt[real], bins=[50, 100, 150, 200, 250, 300])
    assert (np.diff(counts) < 0).all() and counts[-1] < counts[0] / 10


def test_four_top_events_carry_more_jets_and_b_jets():
    X, y = generate_block(10000, np.random.default_rng(3))
    types = object_types(X)
    jets = np.isin(types, (1, 2)).sum(1)
    bjets = (types == 2).sum(1)
    for other in (2, 3, 4, 5):
        assert jets[y == 1].mean() > jets[y == other].mean() + 0.5
        assert bjets[y == 1].mean() > bjets[y == other].mean()


def test_met_balances_the_visible_objects():
    """Momentum balance: MET follows minus the kept objects' vector sum, closely, not exactly
    (neutrinos, lost objects, resolution, the soft term and pile-up come between)."""
    X, _ = generate_block(4000, np.random.default_rng(4))
    types, feats = object_types(X), object_features(X)
    pt, phi = feats[..., 1] * (types > 0), feats[..., 3]
    visible = -np.stack([(pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)], 1)
    met = X[:, MET, None] * np.stack([np.cos(X[:, METPHI]), np.sin(X[:, METPHI])], 1)
    for axis in (0, 1):
        r = np.corrcoef(met[:, axis], visible[:, axis])[0, 1]
        assert 0.6 < r < 0.95, f"component {'xy'[axis]}: r = {r:.3f}"
    ratio = np.hypot(*visible.T).mean() / X[:, MET].mean()
    assert 0.5 < ratio < 2, f"mean |visible sum| / mean MET = {ratio:.2f}"


def test_deterministic_and_independent_of_how_it_is_read(tmp_path):
    a = list(iter_event_blocks(25000, seed=7))
    b = list(iter_event_blocks(25000, seed=7))
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(a, b, strict=True))
    other = next(iter_event_blocks(25000, seed=8))[1]
    assert not np.array_equal(a[0][1], other)
    assert sum(len(block[1]) for block in a) == 25000
    stream = generate_events({"n_events": 25000, "seed": 7})
    assert stream.shapes["X"] == ((25000, N_COLUMNS), np.float32)
    assert N_OBJECTS == 18
