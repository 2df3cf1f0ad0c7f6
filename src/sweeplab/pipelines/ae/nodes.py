"""Autoencoder nodes: model inputs from the split file, training, the reconstruction figure."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import matplotlib.figure
import numpy as np
import torch

from sweeplab.config import NonNegativeFloat, from_dict
from sweeplab.datasets.hdf5 import H5File
from sweeplab.families import Training
from sweeplab.figures import no_weights, run_title
from sweeplab.pipelines.ae.model import EventAutoencoder, ModelConfig, autoencoder_metrics
from sweeplab.pipelines.events.format import MET, METPHI, check_rows, object_features, object_types
from sweeplab.pipelines.events.nodes import split_keys, token_transform
from sweeplab.training import TrainerConfig, fingerprint


@dataclass(frozen=True)
class LossConfig:
    globals_beta: NonNegativeFloat  # weight of the MET / METphi head's loss
    commitment_weight: NonNegativeFloat  # vq only


@dataclass(frozen=True)
class AEConfig:
    model: ModelConfig
    loss: LossConfig
    trainer: TrainerConfig


def transverse_vectors(raw: np.ndarray, mask: np.ndarray, pt_scale: float) -> np.ndarray:
    """(n, 18, 4) raw (E, pT, eta, phi) -> (n, 18, 4) (cos phi, sin phi, px, py), momenta in
    units of ``pt_scale``, padding zero: the encoder's view of the transverse plane."""
    pt, phi = raw[..., 1].astype(np.float64) / pt_scale, raw[..., 3].astype(np.float64)
    vectors = np.stack([np.cos(phi), np.sin(phi), pt * np.cos(phi), pt * np.sin(phi)], -1)
    return (vectors * mask[..., None]).astype(np.float32)


def build_ae_inputs(events_split: H5File, normaliser: dict[str, Any]) -> dict[str, Any]:
    """Node: per split, normalised token features, transverse vectors, type ids, padding mask
    and MET targets.

    ``fingerprint`` identifies the arrays, so a checkpoint is never reused on other data.
    """
    mean, std = np.array(normaliser["mean"]), np.array(normaliser["std"])
    pt_scale = float(np.expm1(mean[1]))  # a typical object pT, in the file's units
    met_mean, met_std = normaliser["log_met"]["mean"], normaliser["log_met"]["std"]
    inputs: dict[str, Any] = {}
    for split, (x_key, _) in split_keys(events_split).items():
        X = events_split.read(x_key)
        check_rows(X, f"{events_split.path}:{x_key}")
        types = object_types(X).astype(np.int64)
        mask = types > 0
        raw = object_features(X)
        features = ((token_transform(raw) - mean) / std) * mask[..., None]
        inputs[split] = {
            "features": features.astype(np.float32),
            "transverse": transverse_vectors(raw, mask, pt_scale),
            "types": types,
            "mask": mask,
            "met": ((np.log1p(X[:, MET].astype(np.float64)) - met_mean) / met_std).astype(np.float32),
            "met_phi": X[:, METPHI].astype(np.float32),
        }
    inputs["fingerprint"] = fingerprint(inputs)
    return inputs


def autoencoder_training(cfg: AEConfig, ae_inputs: dict[str, Any]) -> Training:
    """One variant's setup for the shared training node (``sweeplab.families.train_variant``)."""
    return Training(
        build_model=functools.partial(EventAutoencoder, cfg.model),
        batch_metrics=functools.partial(autoencoder_metrics, globals_beta=cfg.loss.globals_beta,
                                        commitment_weight=cfg.loss.commitment_weight),
        train_data=ae_inputs["train"],
        val_data=ae_inputs["val"],
    )


@torch.no_grad()
def reconstruct(weights: dict[str, torch.Tensor], config: dict[str, Any], inputs: dict[str, np.ndarray],
                normaliser: dict[str, Any], max_events: int = 3000) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """True and reconstructed pT, eta, phi (real objects) and MET, in physical units."""
    cfg = from_dict(AEConfig, config["config"], where="ae")
    model = EventAutoencoder(cfg.model)
    model.load_state_dict(weights)
    model.eval()
    batch = {k: torch.as_tensor(v[:max_events]) for k, v in inputs.items()}
    out = model(batch["features"], batch["transverse"], batch["types"], batch["mask"])
    mean, std = np.array(normaliser["mean"]), np.array(normaliser["std"])
    mask = batch["mask"].numpy()
    true = batch["features"].numpy()[mask] * std + mean
    reco = out.features.numpy()[mask] * std + mean
    lm = normaliser["log_met"]
    met = lambda x: np.expm1(x * lm["std"] + lm["mean"])  # noqa: E731
    return {
        "pT [GeV]": (np.expm1(true[:, 1]), np.expm1(reco[:, 1])),
        "eta": (true[:, 2], reco[:, 2]),
        "phi": (true[:, 3], reco[:, 3]),
        "MET [GeV]": (met(batch["met"].numpy()), met(out.met.numpy())),
    }


def plot_reconstruction(weights: dict[str, torch.Tensor], config: dict[str, Any], summary: dict[str, Any],
                        ae_inputs: dict[str, Any], normaliser: dict[str, Any]) -> matplotlib.figure.Figure:
    """Node: ``recon.png``, true vs reconstructed distributions on the validation split."""
    fig = matplotlib.figure.Figure(figsize=(10, 7))
    fig.subplots_adjust(left=0.07, right=0.97, bottom=0.08, top=0.92, wspace=0.2, hspace=0.3)
    if not weights:
        return no_weights(config, summary, fig)
    quantities = reconstruct(weights, config, ae_inputs["val"], normaliser)
    for ax, (name, (true, reco)) in zip(fig.subplots(2, 2).flat, quantities.items(), strict=True):
        lo, hi = np.percentile(np.concatenate([true, reco]), [0.5, 99.5])
        bins = np.linspace(lo, hi, 50)
        ax.hist(true, bins, histtype="step", label="true", color="black")
        ax.hist(reco, bins, histtype="step", label="reconstructed", color="tab:red")
        ax.set_xlabel(name)
        ax.locator_params(axis="x", nbins=5)
        if "GeV" in name:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(f"{run_title(config)}: validation events, best epoch {summary['best_epoch']}")
    return fig

