"""Sweeps: a spec expands into many runs, pushed within the backend's limits, followed to the end and pulled; the
sweep's state survives interruption. spec.py reads the spec file, state.py keeps the saved state, plan.py turns the
spec into points with their GPU hours, runner.py pushes and polls, report.py shows progress and submits the best."""
