"""Global workspace over two domains, with a synergy prior."""
