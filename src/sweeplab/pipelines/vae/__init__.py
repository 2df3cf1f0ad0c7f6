"""Variational autoencoder over images represented as Gaussian splats (conv1d / resnet)."""
