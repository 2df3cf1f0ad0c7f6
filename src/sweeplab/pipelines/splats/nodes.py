"""Splat data prep: splats fitted to photographs (cached), or read from a real file; then
ordered, split and standardised into the VAE's model inputs.

The file format (real or generated) is HDF5 with ``splats`` (N, G, 8) float32, columns
``render.COLUMNS``, and optionally ``images`` (N, H, W, 3) in [0, 1], the pictures the
splats describe, for figures. A file already split holds ``splats_train`` / ``splats_val``
(and ``images_train`` / ``images_val``) instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import numpy as np

from sweeplab import code_identity
from sweeplab.config import (
    OPEN_FRACTION,
    ConfigError,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    config_hash,
    from_dict,
)
from sweeplab.datasets.hdf5 import H5File
from sweeplab.datasets.results_cache import ResultsCache
from sweeplab.errors import DataFileError, InputError
from sweeplab.pipelines.splats import render
from sweeplab.training import devices, fingerprint

logger = logging.getLogger(__name__)

N_FIGURE_IMAGES = 8  # validation images kept for the reconstruction figures

# every channel a model may read, standardised with training statistics; the rotation is
# there both as an angle and as (cos 2theta, sin 2theta), and a variant picks one
CHANNELS = ("x", "y", "scale_x", "scale_y", "rotation", "rotation_cos2", "rotation_sin2", "f1", "f2", "f3")
ROTATION = {"angle": ("rotation",), "doubled_angle": ("rotation_cos2", "rotation_sin2")}


@dataclass(frozen=True)
class SplatFitConfig:
    images: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")  # bundled
    n_patches: PositiveInt = 2048
    patch_size: PositiveInt = 32
    downscale: PositiveInt = 4  # each photograph is shrunk by this factor before cropping
    n_gaussians: PositiveInt = 64
    steps: PositiveInt = 100  # Adam steps per batch of patches
    lr: PositiveFloat = 0.1
    batch_size: PositiveInt = 128
    seed: NonNegativeInt = 0
    # where the fit runs (auto: CUDA, else MPS, else CPU). Not part of the cache key: a fit
    # made on a GPU serves a CPU run too; its report says where it was made.
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"

    def __post_init__(self) -> None:
        try:
            render.check_image_names(self.images)
        except InputError as exc:
            raise ConfigError(f"images: {exc}") from None


@dataclass(frozen=True)
class SplatsConfig:
    source: Literal["synthetic", "file"]  # synthetic: splats fitted to photographs; file: data/01_raw/splats.h5
    synthetic: SplatFitConfig
    order: Literal["hilbert", "none"] = "hilbert"  # each image's Gaussians along a Hilbert curve of (x, y)
    val_fraction: Annotated[float, OPEN_FRACTION] = 0.2  # used when the file is not split already
    split_seed: NonNegativeInt = 0


# ----------------------------------------------------------------------------------------------
# splats fitted to photographs


def fit_photo_splats(params: dict[str, Any], cache: ResultsCache) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Node: G Gaussians fitted to each of ``n_patches`` patches of scikit-image's photographs,
    in the file format (each image's Gaussians in fitting order), and a fit report.

    The fit is cached on its parameters, the fitting code's identity (``render`` and what it
    imports, with torch's and numpy's versions) and scikit-image's version (whose wheel holds
    the photographs): the same command run again reads the fit back, and an edit of the
    fitting code fits again.
    """
    import skimage  # noqa: PLC0415 - only this source needs it

    cfg = from_dict(SplatFitConfig, params, where="splats.synthetic")
    code = code_identity.of_modules((render.__name__,)).digest
    fit = {k: v for k, v in asdict(cfg).items() if k != "device"}
    key = config_hash({"fit": fit, "code": code, "skimage": skimage.__version__})
    cached = cache.get(key)
    if cached is not None:
        logger.info("Splat fit %s: read from %s (no refit)", key[:12], cache.root)
        return {"splats": cached["splats"], "images": cached["images"]}, dict(cached["report"], cached=True)
    device = devices.pick_device(cfg.device, where="splats.synthetic.device")
    start = time.perf_counter()
    patches = render.load_patches(images=cfg.images, n_patches=cfg.n_patches, size=cfg.patch_size, seed=cfg.seed,
                                  downscale=cfg.downscale)
    splats, diagnostics = render.fit_splats(patches, n_gaussians=cfg.n_gaussians, steps=cfg.steps, lr=cfg.lr,
                                            seed=cfg.seed, batch_size=cfg.batch_size, device=device)
    report = {**diagnostics, "key": key, "n_patches": len(patches), "n_gaussians": cfg.n_gaussians,
              "patch_size": cfg.patch_size, "device": device.type, "fit_s": round(time.perf_counter() - start, 2)}
    logger.info("Fitted %d Gaussians to %d patches on %s in %.0f s: PSNR %.1f dB", cfg.n_gaussians, len(patches),
                device.type, report["fit_s"], report["psnr_final"])
    result = {"splats": splats.astype(np.float32), "images": patches.astype(np.float32)}
    cache.put(key, {**result, "report": report})
    return result, dict(report, cached=False)


# ----------------------------------------------------------------------------------------------
# a file of splats -> the VAE's model inputs


def _read_split(splats_file: H5File, suffix: str) -> dict[str, np.ndarray]:
    """``splats<suffix>`` (and ``images<suffix>`` when present), checked; errors name file and key."""
    key = splats_file.find(f"splats{suffix}")
    shape = splats_file.numeric(key, ndim=3)
    if shape[2] != len(render.COLUMNS) or shape[0] == 0 or shape[1] == 0:
        raise DataFileError(f"{splats_file.path}:{key}: expected shape (images, Gaussians, {len(render.COLUMNS)}) "
                            f"with columns {list(render.COLUMNS)}, got {shape}")
    stored = splats_file.read(key)
    splats = stored.astype(np.float32)
    finite = np.isfinite(splats)
    if not finite.all():
        image, gaussian, column = np.argwhere(~finite)[0]
        value = stored[image, gaussian, column]
        what = f"{value:g} (beyond float32)" if np.isfinite(value) else "non-finite"
        raise DataFileError(f"{splats_file.path}:{key}: {what} {render.COLUMNS[column]} at image {image}, "
                            f"Gaussian {gaussian}")
    for column in (0, 1):  # the centres' documented range
        outside = ~((splats[..., column] >= 0) & (splats[..., column] <= 1))
        if outside.any():
            image, gaussian = np.argwhere(outside)[0]
            raise DataFileError(f"{splats_file.path}:{key}: {render.COLUMNS[column]} = "
                                f"{splats[image, gaussian, column]:g} at image {image}, Gaussian {gaussian}; "
                                "expected a centre in [0, 1] (patch sides)")
    part = {"splats": splats, "row": np.arange(shape[0])}
    image_key = next((k for k in splats_file.keys() if k.lower() == f"images{suffix}".lower()), None)
    if image_key is not None:
        image_shape = splats_file.numeric(image_key, ndim=4)
        if image_shape[0] != shape[0] or image_shape[3] != 3:
            raise DataFileError(f"{splats_file.path}:{image_key}: expected shape ({shape[0]}, H, W, 3), "
                                f"got {image_shape}")
        images = splats_file.read(image_key).astype(np.float32)
        outside = ~((images >= 0) & (images <= 1))  # NaN is outside too
        if outside.any():
            image, row, col, channel = np.argwhere(outside)[0]
            raise DataFileError(f"{splats_file.path}:{image_key}: {images[image, row, col, channel]:g} at image "
                                f"{image}, pixel ({row}, {col}), channel {channel}; expected RGB values in [0, 1]")
        part["images"] = images
    return part


def load_splat_splits(splats_file: H5File, cfg: SplatsConfig) -> dict[str, dict[str, np.ndarray]]:
    """train/val parts of a file: as stored when it is split already, else a seeded split."""
    keys = {k.lower() for k in splats_file.keys()}
    if {"splats_train", "splats_val"} <= keys:
        parts = {split: _read_split(splats_file, f"_{split}") for split in ("train", "val")}
        widths = {split: part["splats"].shape[1:] for split, part in parts.items()}
        if widths["train"] != widths["val"]:
            raise DataFileError(f"{splats_file.path}: splats_train and splats_val differ in shape {widths}")
        return parts
    whole = _read_split(splats_file, "")
    n = len(whole["splats"])
    n_val = round(n * cfg.val_fraction)
    if not 0 < n_val < n:
        raise DataFileError(f"{splats_file.path}:splats: {n} images cannot be split with val_fraction "
                            f"{cfg.val_fraction}; expected at least one image in each split")
    order = np.random.default_rng(cfg.split_seed).permutation(n)
    index = {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val])}
    return {split: {k: v[rows] for k, v in whole.items()} for split, rows in index.items()}


def splat_channels(splats: np.ndarray) -> np.ndarray:
    """(N, G, 8) in the file's units -> (N, G, 10): every entry of ``CHANNELS``, unstandardised."""
    theta = render.wrap_angle(splats[..., 4])
    doubled = render.rotation_channels(theta, "doubled_angle")
    return np.concatenate([splats[..., :4], theta[..., None], doubled, splats[..., 5:]], axis=-1).astype(np.float32)


def _check_standardised(x: np.ndarray, raw: np.ndarray, mean: np.ndarray, std: np.ndarray, *, where: str,
                        rows: np.ndarray) -> None:
    """Every standardised value finite, or an error naming the channel, the file's image row
    and why (a value far outside the training split's spread overflows float32)."""
    bad = ~np.isfinite(x)
    if bad.any():
        image, gaussian, channel = np.argwhere(bad)[0]
        raise DataFileError(f"{where}: {CHANNELS[channel]} = {raw[image, gaussian, channel]:g} at image "
                            f"{rows[image]} does not standardise to a finite value with the training split's "
                            f"mean {mean[channel]:.3g} and std {std[channel]:.3g}")


def build_vae_inputs(splats_file: H5File, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Node: per split, every candidate channel standardised with training statistics, each
    image's Gaussians in ``order``; the validation images for figures; and the normaliser
    (the statistics, the order, the channel names) as its own versioned artefact."""
    cfg = from_dict(SplatsConfig, params, where="splats")
    parts = load_splat_splits(splats_file, cfg)
    if cfg.order == "hilbert":
        for part in parts.values():
            part["splats"] = render.sort_along_curve(part["splats"])
    channels = {split: splat_channels(part["splats"]) for split, part in parts.items()}
    flat = channels["train"].reshape(-1, len(CHANNELS)).astype(np.float64)
    mean, std = flat.mean(0), flat.std(0)
    std = np.where(std > 1e-8, std, 1.0)  # a constant channel stays at zero
    inputs: dict[str, Any] = {}
    for split, raw in channels.items():
        with np.errstate(over="ignore"):  # checked below, naming the value
            x = ((raw - mean) / std).astype(np.float32)
        _check_standardised(x, raw, mean, std, where=f"{splats_file.path} ({split} split)", rows=parts[split]["row"])
        inputs[split] = {"x": x}
    if "images" in parts["val"]:
        inputs["val_images"] = {"images": parts["val"]["images"][:N_FIGURE_IMAGES]}
    inputs["fingerprint"] = fingerprint({split: inputs[split] for split in ("train", "val")})
    normaliser = {
        "channels": list(CHANNELS), "mean": mean.tolist(), "std": std.tolist(), "order": cfg.order,
        "n_gaussians": int(channels["train"].shape[1]),
        "images": {split: len(part["splats"]) for split, part in parts.items()},
        "units": {"x, y": "patch sides, [0, 1]", "scale_x, scale_y": "log of the std along each axis, patch sides",
                  "rotation": "radians, [0, pi)", "f1, f2, f3": "RGB colour added at the centre"},
    }
    return inputs, normaliser
