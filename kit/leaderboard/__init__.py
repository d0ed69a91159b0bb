"""Comparing runs: leaderboard.csv (one row per run, rewritten from the records), its terminal view, filtering and
grouping, a run's summary, plots, and the statistics they share."""
