"""Two-domain "simple shapes" data with a synergistic target, for the global-workspace family."""
