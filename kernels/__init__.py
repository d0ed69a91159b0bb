"""Kernel templates (train.py, infer.py) and the runtime code `kit build` inlines into them."""
