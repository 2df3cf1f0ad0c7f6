import math

import numpy as np
import pytest
import skimage.data
import torch

from sweeplab.pipelines.splats.render import (
    COLUMNS,
    fit_splats,
    hilbert_index,
    load_patches,
    render,
    rotation_channels,
    sort_along_curve,
    wrap_angle,
)


def random_splats(batch, n_gaussians, seed=0, dtype=torch.float32):
    """Anisotropic Gaussians a few pixels wide, inside the patch, with colours in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    columns = [torch.rand(batch, n_gaussians, 2, generator=g) * 0.8 + 0.1,
               math.log(0.08) + 0.5 * torch.randn(batch, n_gaussians, 2, generator=g),
               torch.rand(batch, n_gaussians, 1, generator=g) * math.pi,
               torch.rand(batch, n_gaussians, 3, generator=g)]
    return torch.cat(columns, -1).to(dtype)


def render_directly(splats, height, width):
    """The defining sum, pixel by pixel with an explicit 2x2 covariance inverse."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    centres = torch.stack([(cols + 0.5) / width, (rows + 0.5) / height], -1).to(splats.dtype)
    image = torch.zeros(splats.shape[0], height, width, 3, dtype=splats.dtype)
    for b in range(splats.shape[0]):
        for x, y, sx, sy, theta, *colour in splats[b]:
            rot = torch.stack([torch.stack([theta.cos(), -theta.sin()]), torch.stack([theta.sin(), theta.cos()])])
            sigma = rot @ torch.diag(torch.stack([sx.exp() ** 2, sy.exp() ** 2])) @ rot.T
            d = centres - torch.stack([x, y])  # (H, W, 2)
            q = torch.einsum("hwi,ij,hwj->hw", d, torch.linalg.inv(sigma), d)
            image[b] += torch.exp(-0.5 * q)[..., None] * torch.stack(colour)
    return image


@pytest.fixture(scope="module")
def astronaut():
    return load_patches(images=["astronaut"], n_patches=4, size=32, seed=0)


def test_render_shape_and_gradients_reach_every_column():
    splats = random_splats(2, 5).requires_grad_()
    image = render(splats, 7, 9)
    assert image.shape == (2, 7, 9, 3) and image.dtype == torch.float32
    weights = torch.rand(image.shape, generator=torch.Generator().manual_seed(1))
    (image * weights).sum().backward()
    grad = splats.grad.abs().sum((0, 1))  # (8,)
    assert torch.isfinite(splats.grad).all()
    assert (grad > 0).all(), dict(zip(COLUMNS, grad.tolist(), strict=True))


def test_render_matches_the_defining_sum():
    splats = random_splats(2, 3, seed=2, dtype=torch.float64)
    assert torch.allclose(render(splats, 6, 5), render_directly(splats, 6, 5), atol=1e-10)


def test_render_gradient_checks():
    splats = random_splats(2, 2, seed=2, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda s: render(s, 4, 5), splats)


def test_round_gaussian_renders_its_colour_at_its_centre_symmetrically():
    colour = [0.2, 0.5, 0.9]
    splats = torch.tensor([[[10.5 / 16, 5.5 / 16, math.log(0.1), math.log(0.1), 0.7, *colour]]])
    image = render(splats, 16, 16)[0]  # (H, W, 3)
    assert torch.allclose(image[5, 10], torch.tensor(colour), atol=1e-5)
    assert image[..., 2].argmax() == 5 * 16 + 10
    for k in range(1, 5):
        assert torch.allclose(image[5, 10 + k], image[5, 10 - k], atol=1e-6)
        assert torch.allclose(image[5 + k, 10], image[5, 10 + k], atol=1e-6)  # round: no direction


def test_turning_by_pi_gives_the_same_image():
    splats = random_splats(3, 6, seed=3)
    turned = splats.clone()
    turned[..., 4] += math.pi
    assert torch.allclose(render(splats, 12, 12), render(turned, 12, 12), atol=1e-5)


def test_render_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"\(B, G, 8\)"):
        render(torch.zeros(2, 5, 7), 4, 4)


def test_fit_lowers_the_error_and_returns_the_format(astronaut):
    splats, info = fit_splats(astronaut, n_gaussians=16, steps=15, lr=0.1, seed=0, batch_size=3)
    assert splats.shape == (4, 16, 8) and splats.dtype == np.float32
    assert info["mse_final"] < 0.5 * info["mse_initial"]
    assert info["psnr_final"] == pytest.approx(
        np.mean(10 * np.log10(1 / np.mean((render(torch.from_numpy(splats), 32, 32).numpy() - astronaut) ** 2,
                                          axis=(1, 2, 3)))), abs=1e-3), "diagnostics describe the returned splats"
    assert ((splats[..., :2] >= 0) & (splats[..., :2] <= 1)).all()
    assert ((splats[..., 4] >= 0) & (splats[..., 4] < math.pi)).all()


def test_fit_is_deterministic_for_a_seed(astronaut):
    first, info = fit_splats(astronaut[:2], n_gaussians=9, steps=3, lr=0.05, seed=4)
    again, info_again = fit_splats(astronaut[:2], n_gaussians=9, steps=3, lr=0.05, seed=4)
    other, _ = fit_splats(astronaut[:2], n_gaussians=9, steps=3, lr=0.05, seed=5)
    assert np.array_equal(first, again) and info == info_again
    assert not np.array_equal(first, other)


def test_fit_does_not_depend_on_the_batch_size(astronaut):
    one_batch, info = fit_splats(astronaut, n_gaussians=9, steps=3, lr=0.05, seed=4, batch_size=4)
    in_pieces, info_pieces = fit_splats(astronaut, n_gaussians=9, steps=3, lr=0.05, seed=4, batch_size=3)
    assert np.allclose(one_batch, in_pieces, atol=1e-5)
    assert info == pytest.approx(info_pieces, rel=1e-5)


@pytest.mark.parametrize(("key", "value"), [("n_gaussians", 0), ("steps", -1), ("lr", 0.0), ("batch_size", 0)])
def test_fit_rejects_bad_options(astronaut, key, value):
    options = {"n_gaussians": 4, "steps": 1, "lr": 0.1, "seed": 0, "batch_size": 2} | {key: value}
    with pytest.raises(ValueError, match=key):
        fit_splats(astronaut, **options)


def test_wrap_angle_stays_below_pi():
    wrapped = wrap_angle(np.array([-1e-9, 0.0, math.pi, 3 * math.pi / 2, -math.pi / 2, 7.0]))
    assert ((wrapped >= 0) & (wrapped < math.pi)).all() and wrapped.dtype == np.float32
    assert np.allclose(wrapped[2:], [0, math.pi / 2, math.pi / 2, 7 - 2 * math.pi], atol=1e-6)


@pytest.mark.parametrize("bits", [1, 3, 4])
def test_hilbert_index_is_a_path_through_adjacent_cells(bits):
    n = 1 << bits
    cy, cx = np.divmod(np.arange(n * n), n)
    index = hilbert_index((cx + 0.5) / n, (cy + 0.5) / n, bits=bits)
    assert index.dtype == np.int64
    assert np.array_equal(np.sort(index), np.arange(n * n)), "one cell per position"
    order = np.argsort(index)
    steps = np.abs(np.diff(cx[order])) + np.abs(np.diff(cy[order]))
    assert (steps == 1).all(), "consecutive positions are edge neighbours"


def test_hilbert_index_clips_to_the_border_and_rejects_bad_bits():
    assert hilbert_index(np.array([-0.2, 1.0]), np.array([0.0, 1.3]), bits=2).tolist() == [
        hilbert_index(0.0, 0.0, bits=2), hilbert_index(0.99, 0.99, bits=2)]
    with pytest.raises(ValueError, match="bits"):
        hilbert_index(np.zeros(3), np.zeros(3), bits=0)


def test_sort_along_curve_keeps_each_images_gaussians():
    splats = random_splats(3, 20, seed=6).numpy()
    before = splats.copy()
    ordered = sort_along_curve(splats)
    assert ordered is not splats and np.array_equal(splats, before), "input untouched"
    for image, sorted_image in zip(splats, ordered, strict=True):
        assert np.array_equal(np.unique(image, axis=0), np.unique(sorted_image, axis=0))
    assert (np.diff(hilbert_index(ordered[..., 0], ordered[..., 1]), axis=1) >= 0).all()


def test_rotation_channels():
    rotation = np.array([[0.0, math.pi / 4, math.pi / 2], [1.0, 2.0, math.pi - 1e-6]], dtype=np.float32)
    angle = rotation_channels(rotation, "angle")
    doubled = rotation_channels(rotation, "doubled_angle")
    assert angle.shape == (2, 3, 1) and np.array_equal(angle[..., 0], rotation)
    assert doubled.shape == (2, 3, 2) and doubled.dtype == np.float32
    assert np.allclose(doubled[0], [[1, 0], [0, 1], [-1, 0]], atol=1e-6)
    assert np.allclose(doubled[1, 2], doubled[0, 0], atol=1e-5), "continuous across the wrap at pi"
    with pytest.raises(ValueError, match="sine"):
        rotation_channels(rotation, "sine")


def test_load_patches_is_deterministic_and_in_range():
    patches = load_patches(images=["chelsea", "coffee"], n_patches=5, size=16, seed=1)
    again = load_patches(images=["chelsea", "coffee"], n_patches=5, size=16, seed=1)
    other = load_patches(images=["chelsea", "coffee"], n_patches=5, size=16, seed=2)
    assert patches.shape == (5, 16, 16, 3) and patches.dtype == np.float32
    assert patches.min() >= 0 and patches.max() <= 1 and patches.std() > 0.01
    assert np.array_equal(patches, again) and not np.array_equal(patches, other)


def is_crop_of(patch, photo):
    windows = np.lib.stride_tricks.sliding_window_view(photo, patch.shape[:2], axis=(0, 1))
    return np.isclose(windows, patch.transpose(2, 0, 1), atol=1e-6).all(axis=(2, 3, 4)).any()


def test_load_patches_are_crops_of_the_downscaled_photographs_in_order():
    patches = load_patches(images=["chelsea", "coffee"], n_patches=5, size=16, seed=1)
    photos = {}
    for name in ("chelsea", "coffee"):
        photo = getattr(skimage.data, name)().astype(np.float64) / 255
        rows, cols = photo.shape[0] // 4, photo.shape[1] // 4
        photos[name] = photo[: rows * 4, : cols * 4].reshape(rows, 4, cols, 4, 3).mean((1, 3))
    found = [[is_crop_of(patch, photos[name]) for name in ("chelsea", "coffee")] for patch in patches]
    assert found == [[True, False]] * 3 + [[False, True]] * 2, "3 + 2, grouped in the order given"


@pytest.mark.parametrize(("name", "message"), [("not_a_photo", "unknown"), ("camera", "not an RGB"),
                                               ("download_all", "unknown")])
def test_load_patches_rejects_a_name_it_cannot_use(name, message):
    with pytest.raises(ValueError, match=message) as caught:
        load_patches(images=["astronaut", name], n_patches=4, size=8, seed=0)
    assert repr(name) in str(caught.value)


def test_load_patches_rejects_a_patch_larger_than_the_photo():
    with pytest.raises(ValueError, match="'chelsea'.*smaller than the patch size 100"):
        load_patches(images=["chelsea"], n_patches=1, size=100, seed=0, downscale=4)
