"""Runs: each push is a run with a record under submissions/run-N/; its lifecycle (create, push, follow, pull), the
exactly-once intents that keep a push or a submission from happening twice, and sweeps of many runs."""
