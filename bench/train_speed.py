"""How fast kit trains, against the peers, under the protocol at the top of bench/RESULTS.md (a CUDA GPU).

    python bench/train_speed.py prep [MODEL...]       # random-weight models in /tmp (8b, smollm2, qwen15; default 8b)
    python bench/train_speed.py kit MODEL [KEY=VALUE...] [--then-trl]
                                                      # kit's default (the train kernel's functions, its plan) for one
                                                      # run of STEPS steps; KEY=VALUE overrides a setting (a probe, not
                                                      # the default); --then-trl: then trl's SFTTrainer on the model kit
                                                      # prepared (kit's levers, trl's loop: a probe of the loop alone)
    python bench/train_speed.py table [FILE...]       # the side-by-side table from $OUT/train_speed.json (or FILEs)

The peers are bench/peers/ (trl_peft.py, unsloth_trl.py, seeds_recipe.py); they add to the same records. One run =
STEPS optimizer steps of 8 rows (375 = 3,000 rows, 1000 = 8,000 rows); the first WARM_STEPS (20) hold the
compilation; the rest is cut into REPEATS (3) equal consecutive windows, each timed on its own: the table gives
their median and range, and every window. The run's wall time counts from its first step (compilation included);
its setup (load, LoRA, fusing) is listed apart. Rows: random token ids with the reference competition's length mix
(bench/common.py), the same for every trainer. Env: STEPS, WARM_STEPS, REPEATS, T4=1 (the T4 profile emulated:
fp16, no flash attention, 15 GiB). On the device machine run it through bench/device.sh (wheels, environment).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import common
from common import MODELS, T4, guarded, model_facts, projected_wall, record, run_timing

STEPS = int(os.environ.get("STEPS", "375"))
WARM_STEPS = int(os.environ.get("WARM_STEPS", "20"))
REPEATS = int(os.environ.get("REPEATS", "3"))


def kit(model_key: str, overrides: list[str], then_trl: bool) -> None:
    """kit's default training for one run of STEPS steps at batch 8 (the protocol's timing), then optionally trl's
    SFTTrainer on the model kit prepared."""
    import kit_steps
    from peers.harness import rows_for

    path = MODELS.get(model_key, model_key)
    facts = model_facts(path)
    settings = dict(item.split("=", 1) for item in overrides)
    setup_started = time.time()
    config = kit_steps.kit_config(path, settings)
    model, tokenizer, plan = kit_steps.kit_model(config)
    rows = rows_for(facts["vocab"])
    setup_s = time.time() - setup_started

    def run() -> None:
        size = (STEPS - WARM_STEPS) // REPEATS
        marks, step_tokens, note = kit_steps.kit_train(model, tokenizer, config, plan, rows, config["batch_size"], STEPS)
        timing = run_timing(marks, step_tokens, warm=WARM_STEPS, repeats=REPEATS, rows_per_step=config["batch_size"], setup_s=setup_s)
        what = "kit default" if not settings else "kit, " + " ".join(overrides) + " (a probe, not the default)"
        record("train_speed", {"what": what, "trainer": "kit", "settings": settings, "window_steps": size, **plan, **note, **timing,
                               "dynamo": kit_steps.dynamo_counters(), **facts})

    guarded("train_speed", "kit", run, trainer="kit", **facts)
    if then_trl:
        from peers.harness import PackedCollator, trl_train

        guarded("train_speed", "trl on kit's model",
                lambda: trl_train(model, tokenizer, rows, "trl SFTTrainer's loop on kit's prepared model (kit's levers; a probe)", facts,
                                  trainer="trl-on-kit", collator=PackedCollator(tokenizer.pad_token_id), extra=plan), trainer="trl-on-kit")


def rate(entry: dict) -> float | None:
    value = entry.get("useful_tokens_per_s")
    return value.get("median") if isinstance(value, dict) else value


def table(paths: list[Path]) -> str:
    """Markdown: per model, every record's median and range of its windows, steady rate, wall time of its run
    (measured) and of a 1,000-step run (projected), and its ratio to the strongest peer of the same model and
    profile (peers: trl, unsloth; not the seeds' recipe, not probes on kit's model)."""
    records = [e for p in paths for e in json.loads(p.read_text())]
    entries = [e for e in records if rate(e)]
    lines = ["| model | trainer | GPU | useful tokens/s, median [range] (windows) | steady | run: steps, wall incl. compilation | "
             "1,000 steps (projected) | peak GiB | share of bf16 bound | vs strongest peer |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for model, t4 in dict.fromkeys((e["model"], bool(e.get("t4_profile"))) for e in entries):
        rows = [e for e in entries if e["model"] == model and bool(e.get("t4_profile")) == t4]
        peers = [rate(e) for e in rows if e["trainer"] in ("trl", "unsloth")]
        best = max(peers) if peers else None
        for e in rows:
            r = e["useful_tokens_per_s"]
            spread = f"{r['median']:,.0f} [{r.get('min', r['median']):,.0f}-{r.get('max', r['median']):,.0f}] ({', '.join(f'{v:,}' for v in r['values'])})"
            setup = f"+{e['setup_s']} s setup" if e.get("setup_s", -1) >= 0 else "setup not recorded"
            wall = f"{e['steps']}, {e['train_wall_s']} s ({setup})" if "train_wall_s" in e else ""
            projected = f"{projected_wall(e, 1000)} s" if "seconds_per_step" in e else ""
            ratio = f"{r['median'] / best:.2f}x" if best and e["trainer"] != "seeds recipe" else ("recipe vs recipe" if best else "")
            lines.append(f"| {model}{' (T4 profile)' if t4 else ''} | {e['what']} | {e.get('gpu') or ''} | {spread} | "
                         f"{e.get('steady_tokens_per_s', ''):,} | {wall} | {projected} | {e.get('peak_gib')} | "
                         f"{100 * r['median'] / e['bound_tokens_per_s']:.0f}% | {ratio} |")
    for e in records:  # every run is listed: those that failed too, with the error's last line
        if "error" in e:
            found = [line.strip() for line in e["error"].splitlines() if "Error" in line] or e["error"].strip().splitlines()
            last = found[-1][:160].replace("|", "/")
            lines.append(f"| {e.get('model', '')} | {e['what']} | {e.get('gpu') or ''} | failed: {last} | | | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if T4:
        common.emulate_t4()
    if mode == "prep":
        common.prep(args or ["8b"])
    elif mode == "kit":
        kit(args[0], [a for a in args[1:] if "=" in a], "--then-trl" in args)
    elif mode == "table":
        print(table([Path(a) for a in args] or [common.OUT / "train_speed.json"]))
    else:
        sys.exit(__doc__)
