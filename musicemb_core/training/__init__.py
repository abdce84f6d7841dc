"""Training: one loop (``iter_fit``), strategies, checkpoints."""
