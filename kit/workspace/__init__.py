"""The workspace: the folder a person works in (kit.toml at its root) and every file they edit there, checked by one
schema: kit.toml, the run settings of each kernel, where a run's base model comes from, and what kind the
competition is."""
