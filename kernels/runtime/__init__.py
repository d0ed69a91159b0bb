"""Runtime code of the kernels: importable and tested here, inlined into one script by `kit build`.

Rules for modules in this package, which the builder relies on:
- import each other only as `from runtime.<module> import name, ...` (those lines are dropped when inlined);
- top-level names are unique across the package (the modules share one namespace once inlined);
- never import kit (kit is not installed on Kaggle).
"""
