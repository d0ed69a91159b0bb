"""Submitting a run: its file validated against the sample submission, the checks a code competition needs, then
submitted exactly once and its score recorded."""
