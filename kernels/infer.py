"""kit inference kernel: score the test set with a base model and a train run's adapter, one forward pass a row.

Writes submission.csv (ID,is_correct), test_probs.csv and, when labelled validation rows exist, val_predictions.csv
and metrics.json to the working folder.
"""

CONFIG: dict = {}  # kit:config (kit build writes the effective settings here, one per line)

from kernels.runtime.infer import main  # noqa: E402  (inlined by kit build)

if __name__ == "__main__":
    main(CONFIG)
