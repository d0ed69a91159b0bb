"""Backends run kernels and talk to the competition: base.py (the Backend contract and its optional capabilities),
local.py (this machine, against the practice competition) and kaggle/ (Kaggle). registry.py picks the one kit.toml
names. This package imports nothing, so a backend's modules never import their package's code."""
