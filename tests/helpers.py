"""Test kernels: small templates that stand in for the real ones where a test is about kit's plumbing."""

from __future__ import annotations

from pathlib import Path

# Predicts every test row False (the majority class) and writes the files a train run writes.
CONSTANT_TEMPLATE = '''"""Test kernel: predict a constant."""

CONFIG: dict = {}  # kit:config

import csv
import json
import time

from kernels.runtime.paths import competition_dir, working_dir

def main(config):
    print("step 1 loss 0.69", flush=True)
    time.sleep(float(config.get("warmup_steps", 0)) / 10)
    test = competition_dir(config["competition"]) / "test.csv"
    with open(test, newline="") as fh:
        ids = [row["ID"] for row in csv.DictReader(fh)]
    with open(working_dir() / "submission.csv", "w") as fh:
        fh.write("ID,is_correct\\n" + "".join(f"{i},False\\n" for i in ids))
    (working_dir() / "metrics.json").write_text(json.dumps({"val_accuracy": 0.6, "val_rows": 10}))
    (working_dir() / "adapter").mkdir()
    (working_dir() / "adapter" / "weights.bin").write_bytes(b"0" * 10)
    print("done", flush=True)

if __name__ == "__main__":
    main(CONFIG)
'''

FAILING_TEMPLATE = '''"""Test kernel: fails."""

CONFIG: dict = {}  # kit:config

print("loading model", flush=True)
raise RuntimeError("CUDA out of memory while loading the model")
'''


def install_template(workspace: Path, text: str, kernel: str = "train") -> None:
    """Replace the workspace's template of `kernel` with `text`."""
    (workspace / "kernels" / f"{kernel}.py").write_text(text)
