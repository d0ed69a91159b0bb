"""The practice competition, for the local backend: data.py (synthetic rows), competition.py (the competition on
disk: its files, scoring, daily limit, code submissions) and rerun.py (a code submission's rerun, run as
`python -m kit.practice.rerun`)."""
