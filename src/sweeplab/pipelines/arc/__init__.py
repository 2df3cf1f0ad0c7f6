"""ARC puzzles: the data of the tiny recursive model family."""
