"""Floor 8: measuring merges: the live merge, evaluation and the tuner."""
