"""A sweep's spec: a TOML file that expands into runs tagged with the sweep's name, checked against the kernel's
settings before anything runs.

    name = "lr-rank"            # tags every run; names the state file .kit/sweeps/lr-rank.json
    kernel = "train"
    concurrency = 2             # optional: runs at once (default 2 on Kaggle, 1 locally)
    gpu_hours_per_run = 1.5     # optional: overrides the estimate

    [base]                      # settings every run shares (over kit.toml's defaults)
    train_rows = 2000

    [grid]                      # every combination of these values ...
    learning_rate = [1e-4, 2e-4]
    r = [16, 32]

    [random]                    # ... or `count` random samples, reproducible with `seed`
    count = 6
    seed = 0
    learning_rate = { min = 1e-5, max = 1e-3, log = true }
    r = [8, 16, 32]             # a list is a set of choices
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kit.errors import ConfigError
from kit.workspace import schema
from kit.workspace.kernel_config import KERNEL_CONFIGS, config_class, setting_keys, settings_table
from kit.workspace.schema import Key, Table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Range:
    """A numeric range to sample from; `log` samples evenly in log space; ints when both ends are ints."""

    low: float
    high: float
    log: bool = False

    def sample(self, rng: random.Random) -> float | int:
        """One value drawn from the range with `rng`."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if isinstance(self.low, int) and isinstance(self.high, int):
            return min(self.high, max(self.low, round(value)))
        return float(f"{value:.4g}")  # 1.234e-4, not 1.2340589217e-4: it names the run in tables


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec: base settings and the points it varies."""

    name: str
    kernel: str
    base: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, list[Any] | Range] = field(default_factory=dict)
    count: int = 0
    seed: int = 0
    concurrency: int | None = None
    gpu_hours_per_run: float | None = None

    def points(self) -> list[dict[str, Any]]:
        """The settings each run varies, in a fixed order (a larger random `count` keeps the earlier samples)."""
        if self.grid:
            keys = list(self.grid)
            return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]
        if self.random:
            rng = random.Random(self.seed)
            return [
                {k: (v.sample(rng) if isinstance(v, Range) else rng.choice(v)) for k, v in self.random.items()}
                for _ in range(self.count)
            ]
        return [{}]


def _plain_name(value: str) -> str:
    return "" if NAME.match(value) else "not a plain name (letters, digits, - _ .)"


def _positive(value: float) -> str:
    return "" if value > 0 else "must be above 0"


def spec_schema(kernel: str) -> dict[str, Key | Table]:
    """A sweep spec's keys and tables (one declaration each, checked by kit.workspace.schema like kit.toml); the settings in
    [base], [grid] and [random] are the kernel's run settings."""
    settings = settings_table(kernel)
    return {
        "name": Key(str, "", "tags every run and names the state file", required=True, check=_plain_name),
        "kernel": Key(str, "train", "the kernel every run builds", choices=tuple(sorted(KERNEL_CONFIGS))),
        "concurrency": Key(int, 0, "runs at once (0: 2 on Kaggle, 1 locally)", min=1),
        "gpu_hours_per_run": Key(float, 0.0, "overrides the estimate of each run's GPU hours", check=_positive),
        "base": settings,
        "grid": dataclasses.replace(settings, each="list"),
        # count and seed, then each setting as a list of choices or a { min, max, log } range (checked below)
        "random": Table({}),
    }


def load_spec(path: Path) -> SweepSpec:
    """Read and check a sweep spec; every setting is validated against the kernel's config before anything runs."""
    path = Path(path)
    try:
        text = schema.read_text(path, "sweep spec")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"no sweep spec at {path}", hint="write one: kit sweep --help shows an example") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", hint=f"fix the TOML syntax in {path}") from None
    kernel = data.get("kernel", "train")
    if not isinstance(kernel, str) or kernel not in KERNEL_CONFIGS:
        kernel_key = spec_schema("train")["kernel"]
        schema.check_document(path, text, {"kernel": kernel}, {"kernel": kernel_key})
    layout = spec_schema(kernel)
    random_table = data.get("random", {})
    checked = schema.check_document(path, text, {k: v for k, v in data.items() if k != "random"}, layout)
    if not isinstance(random_table, dict):
        schema.check_document(path, text, {"random": random_table}, {"random": layout["random"]})
    grid: dict[str, list[Any]] = checked.get("grid", {})
    base: dict[str, Any] = checked.get("base", {})
    sampled, count, seed = _random_table(path, text, kernel, dict(random_table))
    if grid and sampled:
        raise ConfigError(f"{path}: both [grid] and [random]", hint="a sweep is a grid or random samples; split it into two sweeps")
    overlap = sorted(set(base) & (set(grid) | set(sampled)))
    if overlap:
        raise ConfigError(f"{schema.where(path, text, 'base', overlap[0])}: {overlap[0]!r} is both in [base] and varied", hint=f"remove {overlap[0]} from [base]")
    hours = checked.get("gpu_hours_per_run")
    return SweepSpec(checked["name"], kernel, base, grid, sampled, count if sampled else 0, seed, checked.get("concurrency"), float(hours) if hours else None)


RANDOM_KEYS = {
    "count": Key(int, 0, "how many random points", min=1),
    "seed": Key(int, 0, "fixes the samples"),
}


def _random_table(path: Path, text: str, kernel: str, table: dict[str, Any]) -> tuple[dict[str, list[Any] | Range], int, int]:
    """[random]: count and seed, then each setting as a list of choices or a { min, max, log } range."""
    keys = setting_keys(config_class(kernel))
    fixed = schema.check_table(path, text, "random", {k: table.pop(k) for k in list(table) if k in RANDOM_KEYS}, Table(RANDOM_KEYS))
    sampled: dict[str, list[Any] | Range] = {}
    for key, spec in table.items():
        if key not in keys:
            raise ConfigError(f"{schema.where(path, text, 'random', key)}: [random] {schema.unknown(key, keys, 'setting').message}", hint=schema.unknown(key, keys, "setting").hint)

        def check(value: Any, key: str = key) -> Any:
            try:
                return schema.coerce(key, keys[key], value)
            except ConfigError as exc:
                raise ConfigError(f"{schema.where(path, text, 'random', key)}: [random] {exc.message}", hint=exc.hint) from None

        sampled[key] = _random_values(f"{schema.where(path, text, 'random', key)}: [random]", key, spec, check)
    if sampled and "count" not in fixed:
        raise ConfigError(f"{schema.where(path, text, 'random', None)}: [random] count must be a positive integer", hint="count = 8  under [random]")
    return sampled, fixed.get("count", 0), fixed.get("seed", 0)


def _random_values(where: str, key: str, spec: Any, check: Callable[[Any], Any]) -> list[Any] | Range:
    if isinstance(spec, list) and spec:
        return [check(v) for v in spec]
    if isinstance(spec, dict):
        extra = sorted(set(spec) - {"min", "max", "log"})
        low, high = spec.get("min"), spec.get("max")
        if extra or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise ConfigError(f"{where} {key} must be {{ min = A, max = B, log = true|false }} with A <= B", hint=f"{key} = {{ min = 1e-5, max = 1e-3, log = true }}")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{where} {key}: log must be true or false", hint=f"{key} = {{ min = 1e-5, max = 1e-3, log = true }}")
        if log and low <= 0:
            raise ConfigError(f"{where} {key} has log = true, so min must be above 0", hint="use min = 1e-6 or log = false")
        check(low)
        check(high)
        return Range(low, high, log)
    raise ConfigError(f"{where} {key} must be a list of choices or a {{ min, max }} range", hint=f"{key} = [8, 16, 32]")
