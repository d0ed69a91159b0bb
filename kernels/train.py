"""kit train kernel: fine-tune a causal LM with LoRA to label answers True/False, then score the test set.

Reads the competition's train.csv/test.csv from the input tree and writes to the working folder: the adapter,
config.json, metrics.json, val_predictions.csv and (unless predict_test is off) submission.csv and test_probs.csv.
"""

CONFIG: dict = {}  # kit:config (kit build writes the effective settings here, one per line)

from kernels.runtime.train import main  # noqa: E402  (inlined by kit build)

if __name__ == "__main__":
    main(CONFIG)
