"""Evaluations of what a brain learns (`jbrain eval TASK`): each runs on a
newborn brain with a fixed seed and reports the untrained and ablated
baselines beside the trained figure (DESIGN.md section 6)."""
