"""Training runs for any Dataset: the staged run and its summary (run.py),
the initial-weights policy (initial_weights.py), checkpoint to inference
model (inference.py), schedules, layer selection, optimizers, callbacks,
devices and run folders."""
