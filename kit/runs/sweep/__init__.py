"""Sweeps: a spec expands into many runs, pushed within the backend's limits, followed to the end and pulled; the
sweep's state survives interruption."""
