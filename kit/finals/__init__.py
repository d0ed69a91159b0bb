"""Choosing the final submissions: picking the runs to trust on the private board, and ensembles of runs."""
