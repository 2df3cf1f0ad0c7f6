"""Image patches as sets of 2D Gaussians ("splats"): rendering, fitting and orderings."""
