"""Gaussian splats: image patches described as sums of 2D Gaussians, rendered and fitted in torch.

Format
------
One image is ``G`` Gaussians x 8 float32 columns, :data:`COLUMNS`:

- ``x``, ``y``: the centre, in units of the patch side, in [0, 1]; ``x`` runs to the right
  (columns), ``y`` down (rows). Pixel ``(r, c)`` of an ``H x W`` patch has its centre at
  ``((c + 0.5) / W, (r + 0.5) / H)``, so a patch is the unit square (each axis in units of
  its own side when ``H != W``; every patch here is square).
- ``scale_x``, ``scale_y``: natural log of the standard deviation along the ellipse's own
  first and second axes, in units of the patch side.
- ``rotation``: angle in radians from the ``x`` axis to the ellipse's first axis, wrapped to
  [0, pi) since an ellipse repeats every pi. (Swapping the two scales and adding pi/2 also
  gives the same ellipse; :func:`fit_splats` does not pick one of the two.)
- ``f1``, ``f2``, ``f3``: the RGB colour the Gaussian adds at its centre. Any real value;
  a rendered photograph lies about in [0, 1].

A batch is ``(B, G, 8)``.

Rendering
---------
An accumulated sum in the manner of GaussianImage (no depth, no alpha ordering)::

    image[r, c, :] = sum_g colour_g * exp(-0.5 * d^T Sigma_g^{-1} d)
    d = pixel centre - centre_g,   Sigma_g = R(theta_g) diag(sx_g^2, sy_g^2) R(theta_g)^T

The quadratic form is a polynomial in the pixel coordinates, so :func:`render` computes it
for all Gaussians and pixels as one matrix product of six coefficients per Gaussian with six
monomials per pixel, and accumulates the colours with a second product; a hand-written
backward pass keeps only the ``(B, G, H*W)`` weights and forms nothing else of that size.
Each weight is floored at exp(-50) ~ 2e-22, 10 standard deviations out (see
:data:`MIN_EXPONENT`), which keeps ``exp`` out of its slow underflow path.
Memory is about ``B*G*H*W`` floats (256 patches of 32x32 with G = 64: 67 MB in float32).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from sweeplab.errors import InputError

logger = logging.getLogger(__name__)

COLUMNS = ("x", "y", "scale_x", "scale_y", "rotation", "f1", "f2", "f3")
N_COLUMNS = len(COLUMNS)
# the fit keeps each standard deviation between a third of a pixel (smaller ones only ever
# light one pixel and give their position no gradient) and the whole patch side
MIN_SCALE_PIXELS = 1 / 3
MAX_SCALE = 1.0
# weights are floored at exp(-50) ~ 2e-22 (10 standard deviations out): exp of a float32 that
# underflows takes ten times as long, and most pixels are far from most Gaussians
MIN_EXPONENT = -50.0
# skimage.data names that are not image loaders
_NOT_IMAGES = frozenset({"data_dir", "download_all", "file_hash", "lbp_frontal_face_cascade_filename"})


# ---------------------------------------------------------------------------------------------
# rendering


def _pixel_monomials(height: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(6, H*W): px^2, px*py, py^2, px, py, 1 at each pixel centre, row-major; coordinates are
    taken from the patch centre (in [-0.5, 0.5]) to keep the float32 cancellation small."""
    px = (torch.arange(width, dtype=dtype, device=device) + 0.5) / width - 0.5  # (W,)
    py = (torch.arange(height, dtype=dtype, device=device) + 0.5) / height - 0.5  # (H,)
    px, py = px.repeat(height), py.repeat_interleave(width)  # (H*W,) each
    return torch.stack([px * px, px * py, py * py, px, py, torch.ones_like(px)])


def _exponent_coefficients(splats: torch.Tensor) -> torch.Tensor:
    """(B, G, 8) -> (B, G, 6): coefficients of -0.5 d^T Sigma^-1 d on :func:`_pixel_monomials`.

    With Sigma^-1 = [[a, b], [b, c]] and centre (x0, y0) taken from the patch centre,
    a(px-x0)^2 + 2b(px-x0)(py-y0) + c(py-y0)^2 expands to
    a px^2 + 2b px py + c py^2 - 2(a x0 + b y0) px - 2(c y0 + b x0) py + (a x0^2 + 2b x0 y0 + c y0^2).
    """
    x0, y0 = splats[..., 0] - 0.5, splats[..., 1] - 0.5  # (B, G)
    inv_x, inv_y = torch.exp(-2 * splats[..., 2]), torch.exp(-2 * splats[..., 3])  # 1 / s^2
    cos, sin = torch.cos(splats[..., 4]), torch.sin(splats[..., 4])
    a = cos * cos * inv_x + sin * sin * inv_y
    b = cos * sin * (inv_x - inv_y)
    c = sin * sin * inv_x + cos * cos * inv_y
    terms = [a, 2 * b, c, -2 * (a * x0 + b * y0), -2 * (c * y0 + b * x0),
             a * x0 * x0 + 2 * b * x0 * y0 + c * y0 * y0]
    return -0.5 * torch.stack(terms, -1)


class _AccumulateGaussians(torch.autograd.Function):
    """image = sum_g colour_g * exp(coefficients_g . monomials), keeping only the weights.

    The backward pass never forms a full-size gradient: with g the image gradient,
    d/d coefficient_k = sum_c colour_c * sum_p weight_p * g_cp * monomial_kp, one product of
    the weights with the 18 rows g_c * monomial_k (whose k = "1" rows are the colour
    gradient). ``gradcheck`` in the tests checks it against autograd's numbers. Below the
    floor :data:`MIN_EXPONENT` the backward pass still treats a weight as exp(exponent): its
    gradient is off by at most the floor, 2e-22.
    """

    @staticmethod
    def forward(ctx, coefficients, colours, monomials, workspace):
        # coefficients (B, G, 6), colours (B, G, 3), monomials (6, P) with P = H*W;
        # workspace None or an empty (B, G, P) to fill: the fit reuses one, as a fresh tensor
        # of this size (32 MB for 128 patches) costs more in page faults than the product
        # that fills it
        if workspace is None:
            workspace = coefficients.new_empty(*coefficients.shape[:2], monomials.shape[1])
        exponent = torch.matmul(coefficients, monomials, out=workspace)  # (B, G, P)
        weights = exponent.clamp_(min=MIN_EXPONENT).exp_()
        ctx.save_for_backward(weights, colours, monomials)
        return torch.bmm(colours.transpose(1, 2), weights)  # (B, 3, P)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_image):
        weights, colours, monomials = ctx.saved_tensors
        batch, n_gaussians, n_pixels = weights.shape
        grad_image = grad_image.contiguous()  # (B, 3, P)
        rows = (grad_image[:, :, None, :] * monomials).view(batch, 18, n_pixels)  # (B, 3*6, P)
        moments = torch.bmm(rows, weights.transpose(1, 2))  # (B, 18, G)
        moments = moments.view(batch, 3, 6, n_gaussians).permute(0, 3, 1, 2)  # (B, G, 3, 6)
        grad_coefficients = torch.einsum("bgc,bgck->bgk", colours, moments)  # (B, G, 6)
        grad_colours = moments[..., 5]  # monomial 5 is the constant 1
        return grad_coefficients, grad_colours, None, None


def _render(splats: torch.Tensor, height: int, width: int,
            workspace: torch.Tensor | None = None) -> torch.Tensor:
    monomials = _pixel_monomials(height, width, splats.dtype, splats.device)  # (6, H*W)
    coefficients = _exponent_coefficients(splats)  # (B, G, 6)
    colours = splats[..., 5:].contiguous()  # (B, G, 3)
    image = _AccumulateGaussians.apply(coefficients, colours, monomials, workspace)  # (B, 3, H*W)
    return image.transpose(1, 2).reshape(splats.shape[0], height, width, 3)


def render(splats: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Render splats ``(B, G, 8)`` to images ``(B, H, W, 3)``; differentiable in every column.

    Uses the dtype and device of ``splats``. In float32 the exponent carries an absolute error
    of about 1e-7 / s^2 (s the smaller standard deviation in patch sides): 1e-3 at a third of
    a pixel of a 32-pixel patch.
    """
    if splats.ndim != 3 or splats.shape[-1] != N_COLUMNS:
        raise ValueError(f"splats must be (B, G, {N_COLUMNS}), got {tuple(splats.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be at least 1, got {height} x {width}")
    return _render(splats, height, width)


# ---------------------------------------------------------------------------------------------
# data: crops of scikit-image's sample photographs


def _load_photo(name: str, downscale: int) -> np.ndarray:
    """One skimage.data RGB photograph as float32 in [0, 1], block-averaged by ``downscale``."""
    import skimage.data  # noqa: PLC0415 - only this data source needs scikit-image
    import skimage.util  # noqa: PLC0415

    try:
        image = getattr(skimage.data, name)()
    except (ImportError, OSError) as exc:  # not in the wheel: needs pooch and a network
        raise InputError(f"skimage.data image {name!r} is not bundled with scikit-image "
                         f"and could not be fetched: {exc}") from exc
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3):
        shape = getattr(image, "shape", type(image).__name__)
        raise InputError(f"skimage.data image {name!r} is not an RGB photograph (shape {shape}); "
                         "grayscale, RGBA and stacks are not accepted")
    image = skimage.util.img_as_float32(image)
    rows, cols = image.shape[0] // downscale, image.shape[1] // downscale
    blocks = image[: rows * downscale, : cols * downscale]
    blocks = blocks.reshape(rows, downscale, cols, downscale, 3)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)  # (rows, cols, 3)


def check_image_names(images: Sequence[str]) -> None:
    """Each name is one of ``skimage.data``'s image loaders."""
    import skimage.data  # noqa: PLC0415

    if isinstance(images, str) or len(images) == 0:
        raise InputError(f"images must be a non-empty list of skimage.data names, got {images!r}")
    for name in images:
        if name not in skimage.data.__all__ or name in _NOT_IMAGES:
            raise InputError(f"unknown skimage.data image {name!r}; RGB photographs include "
                             "astronaut, chelsea, coffee, hubble_deep_field, "
                             "immunohistochemistry, retina, rocket")


def load_patches(*, images: Sequence[str], n_patches: int, size: int, seed: int,
                 downscale: int = 4) -> np.ndarray:
    """Random ``size x size`` crops of scikit-image's bundled photographs, ``(N, size, size, 3)``
    float32 in [0, 1].

    ``images`` are ``skimage.data`` function names (e.g. ``astronaut``, ``chelsea``,
    ``coffee``, ``rocket``); each photograph is first block-averaged by ``downscale`` so that a
    small crop holds edges and texture rather than one flat colour. The patches are shared out
    evenly (the first ``n_patches % len(images)`` names get one more) and come out grouped by
    image, in the order of ``images``. Crop corners are drawn with
    ``np.random.default_rng(seed)``; no crop is filtered out.
    """
    check_image_names(images)
    for key, value in (("n_patches", n_patches), ("size", size), ("downscale", downscale)):
        if value < 1:
            raise InputError(f"{key} must be at least 1, got {value}")

    rng = np.random.default_rng(seed)
    photos = {name: _load_photo(name, downscale) for name in dict.fromkeys(images)}
    counts = np.full(len(images), n_patches // len(images))
    counts[: n_patches % len(images)] += 1
    patches = []
    for name, count in zip(images, counts, strict=True):
        photo = photos[name]
        if min(photo.shape[:2]) < size:
            raise InputError(f"skimage.data image {name!r} is {photo.shape[0]} x {photo.shape[1]} "
                             f"after downscale {downscale}, smaller than the patch size {size}")
        windows = np.lib.stride_tricks.sliding_window_view(photo, (size, size), axis=(0, 1))
        rows = rng.integers(0, windows.shape[0], count)
        cols = rng.integers(0, windows.shape[1], count)
        patches.append(windows[rows, cols].transpose(0, 2, 3, 1))  # (count, 3, s, s) -> (count, s, s, 3)
    return np.ascontiguousarray(np.concatenate(patches), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# fitting


def _initial_splats(patches: np.ndarray, n_gaussians: int, rng: np.random.Generator) -> np.ndarray:
    """(N, H, W, 3) -> (N, G, 8): centres on a jittered grid, round Gaussians about a grid
    step wide, colours from the pixel under each centre scaled so the sum starts near the image."""
    n, height, width, _ = patches.shape
    side = math.ceil(math.sqrt(n_gaussians))  # grid of side^2 >= G cells, G of them used
    cells = np.argsort(rng.random((n, side * side)), axis=1)[:, :n_gaussians]  # (N, G)
    x = (cells % side + rng.random((n, n_gaussians))) / side
    y = (cells // side + rng.random((n, n_gaussians))) / side
    sigma = 0.5 / side
    # G round Gaussians of std sigma per unit area add up to about G * 2 pi sigma^2 at a pixel
    coverage = n_gaussians * 2 * math.pi * sigma**2
    rows = np.minimum((y * height).astype(np.int64), height - 1)
    cols = np.minimum((x * width).astype(np.int64), width - 1)
    colours = patches[np.arange(n)[:, None], rows, cols] / coverage  # (N, G, 3)
    # a little anisotropy, so the angle has a gradient from the first step
    log_scales = math.log(sigma) + rng.uniform(-0.1, 0.1, (n, n_gaussians, 2))
    rotation = rng.uniform(0, math.pi, (n, n_gaussians))
    splats = np.concatenate([x[..., None], y[..., None], log_scales, rotation[..., None], colours], -1)
    return splats.astype(np.float32)


def _patch_mse(splats: torch.Tensor, target: torch.Tensor, workspace: torch.Tensor) -> torch.Tensor:
    """(B, G, 8), (B, H, W, 3) -> (B,): mean squared rendering error of each patch."""
    image = _render(splats, target.shape[1], target.shape[2], workspace)
    return (image - target).pow(2).mean((1, 2, 3))


def _fit_batch(initial: torch.Tensor, target: torch.Tensor, *, steps: int, lr: float,
               log_scale_range: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam on the summed per-patch MSE (so patches do not interact); returns the fitted splats
    (B, G, 8) with free angles, and the per-patch MSE before and after, (B,) each."""
    eps = 1e-4
    logit_xy = torch.logit(initial[..., 0:2].clamp(eps, 1 - eps)).requires_grad_()  # centres stay inside
    log_scales = initial[..., 2:4].clone().requires_grad_()
    angle = initial[..., 4:5].clone().requires_grad_()
    colours = initial[..., 5:].clone().requires_grad_()

    def assemble():
        return torch.cat([torch.sigmoid(logit_xy), log_scales, angle, colours], -1)

    optimiser = torch.optim.Adam([logit_xy, log_scales, angle, colours], lr=lr)
    # the weights of every step, (B, G, H*W); each backward pass is done before the next fills it
    workspace = initial.new_empty(*initial.shape[:2], target.shape[1] * target.shape[2])
    with torch.no_grad():
        mse_initial = _patch_mse(assemble(), target, workspace)
    for step in range(steps):
        # cosine decay from lr to lr / 10: big moves first, then settle
        for group in optimiser.param_groups:
            group["lr"] = lr * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))
        loss = _patch_mse(assemble(), target, workspace).sum()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            log_scales.clamp_(*log_scale_range)
    with torch.no_grad():
        splats = assemble()
        return splats, mse_initial, _patch_mse(splats, target, workspace)


def fit_splats(patches: np.ndarray, *, n_gaussians: int, steps: int, lr: float, seed: int,
               batch_size: int = 128, device: torch.device | str = "cpu") -> tuple[np.ndarray, dict]:
    """Fit ``n_gaussians`` splats to every patch ``(N, H, W, 3)`` by Adam on the mean squared
    rendering error, ``batch_size`` patches at a time.

    Centres are optimised as logits (they stay inside the patch), scales as logs clamped to
    [1/3 pixel, 1 patch side], the angle freely (wrapped to [0, pi) at the end), colours as
    they are. The learning rate decays from ``lr`` to ``lr / 10`` along a cosine. The start is
    drawn from ``np.random.default_rng(seed)`` for all patches at once and patches do not
    interact, so on CPU the result depends on the seed only. On another ``device`` the same
    start is fitted; the result differs from the CPU's by float rounding.

    Returns the splats ``(N, G, 8)`` float32 in the :data:`COLUMNS` format and
    ``{"mse_initial", "mse_final", "psnr_final"}``, means over patches (PSNR per patch with
    peak 1, then averaged).
    """
    if patches.ndim != 4 or patches.shape[-1] != 3:
        raise InputError(f"patches must be (N, H, W, 3), got {patches.shape}")
    for key, value in (("n_gaussians", n_gaussians), ("batch_size", batch_size)):
        if value < 1:
            raise InputError(f"{key} must be at least 1, got {value}")
    if steps < 0:
        raise InputError(f"steps must be at least 0, got {steps}")
    if not lr > 0:
        raise InputError(f"lr must be positive, got {lr}")

    n, height, width, _ = patches.shape
    patches = np.asarray(patches, dtype=np.float32)
    initial = _initial_splats(patches, n_gaussians, np.random.default_rng(seed))  # (N, G, 8)
    log_scale_range = (math.log(MIN_SCALE_PIXELS / min(height, width)), math.log(MAX_SCALE))
    fitted = np.empty_like(initial)
    mse_initial, mse_final = np.empty(n), np.empty(n)
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc="fit splats", unit="batch", leave=False, disable=None):
        batch = slice(start, start + batch_size)
        splats, before, after = _fit_batch(torch.from_numpy(initial[batch]).to(device),
                                           torch.from_numpy(patches[batch]).to(device),
                                           steps=steps, lr=lr, log_scale_range=log_scale_range)
        fitted[batch], mse_initial[batch], mse_final[batch] = (t.cpu().numpy() for t in (splats, before, after))
    fitted[..., 4] = wrap_angle(fitted[..., 4])
    psnr = 10 * np.log10(1 / np.maximum(mse_final, 1e-12))
    diagnostics = {"mse_initial": float(mse_initial.mean()), "mse_final": float(mse_final.mean()),
                   "psnr_final": float(psnr.mean())}
    logger.info("fitted %d patches with %d Gaussians in %d steps: MSE %.4g -> %.4g, PSNR %.2f dB",
                n, n_gaussians, steps, diagnostics["mse_initial"], diagnostics["mse_final"],
                diagnostics["psnr_final"])
    return fitted, diagnostics


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles (radians) to [0, pi) in float32; a value that would round up to pi becomes 0."""
    wrapped = np.mod(np.asarray(angle, dtype=np.float64), np.pi).astype(np.float32)
    wrapped[wrapped >= np.float32(np.pi)] = 0  # float32(pi) is just above pi
    return wrapped


# ---------------------------------------------------------------------------------------------
# orderings and encodings


def hilbert_index(x: np.ndarray, y: np.ndarray, *, bits: int = 8) -> np.ndarray:
    """Position (int64, 0 .. 4^bits - 1) along a Hilbert curve of points in [0, 1]^2.

    Each point falls in one cell of a ``2^bits x 2^bits`` grid (values outside [0, 1] are
    clipped to the border cells). Consecutive indices are edge-adjacent cells, so sorting by
    the index keeps neighbours in the plane mostly close in the sequence.
    """
    if not 1 <= bits <= 31:
        raise ValueError(f"bits must be in 1..31, got {bits}")
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("hilbert_index: x and y must be finite")
    n = 1 << bits
    cx = np.clip(np.floor(x * n), 0, n - 1).astype(np.int64)
    cy = np.clip(np.floor(y * n), 0, n - 1).astype(np.int64)
    index = np.zeros(cx.shape, dtype=np.int64)
    half = n >> 1
    while half > 0:
        # which quadrant of the current square, in curve order 0..3 = (0,0) (0,1) (1,1) (1,0)
        right, lower = (cx & half) > 0, (cy & half) > 0
        index += half * half * ((3 * right) ^ lower)
        # turn the quadrant's sub-square so that its curve runs like the parent's
        mirror = ~lower & right
        cx, cy = np.where(mirror, n - 1 - cx, cx), np.where(mirror, n - 1 - cy, cy)
        cx, cy = np.where(~lower, cy, cx), np.where(~lower, cx, cy)
        half >>= 1
    return index


def sort_along_curve(splats: np.ndarray, *, bits: int = 8) -> np.ndarray:
    """A new ``(N, G, 8)`` array with each image's Gaussians in Hilbert order of their centres
    (stable: ties keep their order)."""
    if splats.ndim != 3 or splats.shape[-1] != N_COLUMNS:
        raise ValueError(f"splats must be (N, G, {N_COLUMNS}), got {splats.shape}")
    index = hilbert_index(splats[..., 0], splats[..., 1], bits=bits)  # (N, G)
    order = np.argsort(index, axis=1, kind="stable")
    return np.take_along_axis(splats, order[..., None], axis=1)


def rotation_channels(rotation: np.ndarray,
                      encoding: Literal["angle", "doubled_angle"]) -> np.ndarray:
    """Rotation (...) as model channels: ``angle`` -> (..., 1) the angle itself;
    ``doubled_angle`` -> (..., 2) (cos 2 theta, sin 2 theta), continuous across the wrap at pi."""
    rotation = np.asarray(rotation)
    if encoding == "angle":
        return rotation[..., None].copy()
    if encoding == "doubled_angle":
        return np.stack([np.cos(2 * rotation), np.sin(2 * rotation)], axis=-1)
    raise ValueError(f"encoding must be 'angle' or 'doubled_angle', got {encoding!r}")
