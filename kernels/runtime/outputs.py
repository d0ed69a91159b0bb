"""The last stage: write metrics.json, config.json (the settings as they ran) and plan.json to the working folder.

    write_outputs(run, metrics, effective)   # -> the metrics as written (NaN as null)
"""

from __future__ import annotations

import json
import time

from runtime.environment import gpu_names, log
from runtime.scoring import finite_or_none
from runtime.session import Run


def run_metrics(run: Run) -> dict:
    """What every kernel's metrics.json records about how it ran (the plan's key choices)."""
    plan = run.plan
    return {"engine": plan.engine.value, "dtype": plan.dtype.value, "packing": plan.packing.value, "gpu": gpu_names(),
            "gpu_count": len(gpu_names())}


def task_metrics(labels) -> dict:
    """What metrics.json records about the classes: their names in probability-column order, and the word the model
    was trained to give for each (a code where the names could not serve, listed in the prompt)."""
    return {"classes": list(labels.classes), "label_words": list(labels.words), "label_codes": labels.coded}


def write_outputs(run: Run, metrics: dict, effective: dict) -> dict:
    """metrics.json (with the wall time), config.json (`effective`: the config with what the plan made of it) and
    plan.json (every decision with its reason)."""
    metrics = {k: finite_or_none(v) for k, v in {**metrics, "wall_seconds": round(time.time() - run.started, 2)}.items()}
    (run.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (run.out / "config.json").write_text(json.dumps(effective, indent=1))
    (run.out / "plan.json").write_text(json.dumps(run.plan.to_json(), indent=1))
    log(f"done in {metrics['wall_seconds']:.1f}s; outputs in {run.out}")
    return metrics
