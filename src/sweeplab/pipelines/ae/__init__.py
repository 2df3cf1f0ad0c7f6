"""Particle-physics autoencoder over object tokens with none / linear / VQ latents."""
