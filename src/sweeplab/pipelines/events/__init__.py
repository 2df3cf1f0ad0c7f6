"""4-tops event data: the file format, a synthetic generator, splitting and normalisation."""
