"""Training: one ``fit`` loop with checkpoints and exact resume, and the task modules."""
