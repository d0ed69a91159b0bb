"""One schema for every file a person edits (kit.toml, sweep specs) and for run settings (`--set`, [train], [base]).

Each key is declared once, as a `Key`: its type, default, help and the values it allows. `coerce` is the one place
a value is checked, and `check_document` checks a parsed TOML file against its tables of keys, so that an unknown
key (with a did-you-mean), a wrong type or a bad value is refused before anything runs, in one line that names the
file, the line where it can be found, the key and the fix.

To add a kit.toml key, declare it in `kit.workspace.layout.KIT_TOML` and read it with `Workspace.value(table, key)`.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from kit.errors import ConfigError

TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", list: "a list", str: "text"}
# The largest number a setting without its own maximum takes: a 32-bit integer, which every framework a kernel
# hands it to can hold (`max_steps=1e99` would otherwise be written as a 100-digit integer).
NUMBER_LIMIT = 2**31 - 1
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


@dataclass(frozen=True)
class Key:
    """One key: its type, default, help line and allowed values. `check` returns what is wrong with a value of the
    right type ("" when it is fine), for rules a type and bounds cannot say (a run id, a plain name)."""

    type: type
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    required: bool = False
    check: Callable[[Any], str] | None = None
    rule: str = ""  # what `check` allows, for error messages ("a run id such as run-3")
    fix: str = ""  # the hint of a refused value, where `name = default` is not the fix
    aliases: tuple[str, ...] = ()  # what other tools call it (lr, bs, rank...): an unknown key that is one is pointed here

    def allowed(self) -> str:
        """What the key allows, in words: "one of a, b", "an integer", "a run id such as run-3"."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return self.rule or TYPE_NAMES.get(self.type, getattr(self.type, "__name__", str(self.type)))

    def example(self) -> str:
        """The key's default (or first choice) as a TOML value, for a fix such as `public_rows = 0`."""
        value = self.choices[0] if self.choices and self.default in (None, "") else self.default
        if value in (None, "") and self.type is str:
            return '"..."'
        return toml_value(value)


@dataclass(frozen=True)
class Table:
    """A TOML table: its keys, or a function giving them (run settings come from the kernel's config class).

    `each = "list"` says every value is a non-empty list of the key's values (a sweep's [grid])."""

    keys: Mapping[str, "Key | Table"] | Callable[[], Mapping[str, Key]] = field(default_factory=dict)  # a Table value: [table.name]
    help: str = ""
    word: str = "key"  # "setting" for run settings, so messages say "unknown setting"
    each: str = "value"

    def key_map(self) -> Mapping[str, Key]:
        return self.keys() if callable(self.keys) else self.keys


def toml_value(value: Any) -> str:
    """`value` written as TOML writes it (true, 3, "text", ["a", "b"])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def unknown(name: str, known: Any, word: str = "key", where: str = "", place: str = "") -> ConfigError:
    """An unknown key, with the known one it is another tool's name for (`known` a mapping of Keys with aliases), else
    the closest known one, and the list of allowed ones (`place`: " in [backend]")."""
    aliased = [k for k, spec in known.items() if isinstance(spec, Key) and name.lower() in spec.aliases] if isinstance(known, Mapping) else []
    known = sorted(known)
    if aliased:
        suggestion = f" (did you mean {aliased[0]!r}? that is kit's name for {name})"
    else:
        close = difflib.get_close_matches(name, known, n=1)
        suggestion = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown {word} {name!r}{where}{suggestion}", hint=f"allowed {word}s{place}: {', '.join(known) or 'none'}")


def _integral(value: float) -> int:
    if not math.isfinite(value) or not value.is_integer():
        raise ValueError
    return int(value)


def _parse(key: Key, value: Any) -> Any:
    """`value` as the key's type; a string (from the command line) is parsed. ValueError when it is not one."""
    t = key.type
    if t is bool:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower() if isinstance(value, (str, int)) else None
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError
    if isinstance(value, bool):  # True is an int to Python, not to a person
        raise ValueError
    if t is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return _integral(value)
        if isinstance(value, str):
            text = value.strip()
            return int(text) if re.fullmatch(r"[+-]?\d+", text) else _integral(float(text))
        raise ValueError
    if t is float:
        if not isinstance(value, (int, float, str)):
            raise ValueError
        return float(value)
    if t is list:
        if isinstance(value, (list, tuple)):
            items = list(value)
        elif isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        else:
            raise ValueError
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
            raise ValueError
        return [str(v) for v in items]
    if not isinstance(value, (str, int, float)):
        raise ValueError
    return str(value)


def coerce(name: str, key: Key, value: Any, hint: str = "") -> Any:
    """`value` turned into the key's type and checked against its choices, bounds and rule; or a ConfigError
    that names the key, the value and what is allowed."""
    hint = hint or key.fix or f"{name} = {key.example()}"
    try:
        out = _parse(key, value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"bad value {value!r} for {name!r}: expected {key.allowed()}", hint=hint) from None
    if isinstance(out, float) and not math.isfinite(out):
        raise ConfigError(f"bad value {value!r} for {name!r}: expected a finite number (not nan or inf)", hint=hint)
    if key.choices and out not in key.choices:
        raise ConfigError(f"bad value {value!r} for {name!r}: expected {key.allowed()}", hint=hint)
    lo, hi = key.min, key.max
    if isinstance(out, (int, float)) and not isinstance(out, bool) and hi is None and abs(out) > NUMBER_LIMIT:
        raise ConfigError(f"bad value {value!r} for {name!r}: must be at most {NUMBER_LIMIT}", hint=hint)
    if isinstance(out, (int, float)) and not isinstance(out, bool) and ((lo is not None and out < lo) or (hi is not None and out > hi)):
        bounds = f"at least {lo}" if hi is None else f"at most {hi}" if lo is None else f"between {lo} and {hi}"
        raise ConfigError(f"bad value {value!r} for {name!r}: must be {bounds}", hint=hint)
    if key.check is not None:
        problem = key.check(out)
        if problem:
            raise ConfigError(f"bad value {value!r} for {name!r}: {problem}", hint=hint)
    return out


def defaults(keys: Mapping[str, Key]) -> dict[str, Any]:
    """Every key's default, by name."""
    return {name: key.default for name, key in keys.items()}


# -- files -------------------------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def line_of(text: str, table: str | None, key: str | None) -> int | None:
    """The line (1-based) where `key` is set in `table` (None: the top level), or the table's header when `key` is
    None; None when it cannot be found (a key written in an unusual way)."""
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).strip().strip("\"'")
            if key is None and current == table:
                return number
            continue
        if key is not None and current == table and re.match(rf"""^\s*["']?{re.escape(key)}["']?\s*=""", line):
            return number
    return None


def where(path: Path | str, text: str, table: str | None, key: str | None) -> str:
    """`path:LINE` for a key (or `path` where its line is not found)."""
    line = line_of(text, table, key) if key is not None or table is not None else None
    return f"{path}:{line}" if line else f"{path}"


def read_text(path: Path, what: str) -> str:
    """A person's text file, or a ConfigError naming the line of a byte that is not UTF-8 (and the fix)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a {what}", hint=f"move it away and write {path.name} as a file") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}", hint=f"check the permissions of {path}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path} is UTF-16 text, not UTF-8", hint=f"save {path.name} as UTF-8 (most editors: Save with Encoding)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8 text",
            hint=f"save {path.name} as UTF-8, or retype line {line}",
        ) from None


def check_document(path: Path, text: str, data: Mapping[str, Any], schema: Mapping[str, Key | Table], word: str = "key") -> dict[str, Any]:
    """`data` (parsed from `text`, the file at `path`) checked against `schema`: top-level keys and tables of keys.
    Returns the values as their keys' types. Missing required keys and tables are reported too."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        spec = schema.get(name)
        if spec is None:
            kind = "table" if isinstance(value, dict) else word
            exc = unknown(name, [k for k, s in schema.items() if isinstance(s, Table) == (kind == "table")] or schema, kind)
            if kind == "table":
                exc = ConfigError(exc.message.replace(f"table {name!r}", f"table [{name}]"), exc.hint)
            raise _at(path, text, None if kind == "key" else name, name if kind == "key" else None, exc)
        if isinstance(spec, Table):
            if not isinstance(value, dict):
                keys = list(spec.key_map())
                fix = f"{keys[0]} = {toml_value(value)}" if len(keys) == 1 else "one key per line"
                raise _at(path, text, None, name, ConfigError(
                    f"{name} = {toml_value(value)} is not a table",
                    hint=f"write it as a table: a line [{name}], then {fix} under it",
                ))
            out[name] = check_table(path, text, name, value, spec)
        else:
            out[name] = _checked(path, text, None, name, spec, value)
    for name, spec in schema.items():
        if isinstance(spec, Key) and spec.required and name not in data:
            raise ConfigError(f"{path}: {name} is missing", hint=f"add  {name} = {spec.example()}  at the top of {Path(path).name}")
        if isinstance(spec, Table):
            for key_name, key in spec.key_map().items():
                if isinstance(key, Key) and key.required and key_name not in data.get(name, {}):
                    raise ConfigError(
                        f"{where(path, text, name, None)}: [{name}] {key_name} is missing",
                        hint=f"add  {key_name} = {key.example()}  under [{name}]",
                    )
    return out


def check_table(path: Path, text: str, table: str, data: Mapping[str, Any], spec: Table) -> dict[str, Any]:
    """One table of a file checked against its keys."""
    keys = spec.key_map()
    out: dict[str, Any] = {}
    for name, value in data.items():
        key = keys.get(name)
        if key is None:
            raise _at(path, text, table, name, unknown(name, keys, spec.word, place=f" in [{table}]"))
        if isinstance(key, Table):  # a table inside a table: [task.target]
            if not isinstance(value, dict):
                raise _at(path, text, table, name, ConfigError(f"[{table}] {name} = {toml_value(value)} is not a table",
                                                               hint=f"write it as a table: a line [{table}.{name}], then its keys under it"))
            out[name] = check_table(path, text, f"{table}.{name}", value, key)
            continue
        if spec.each == "list":
            if not isinstance(value, list) or not value:
                raise _at(path, text, table, name, ConfigError(f"[{table}] {name} must be a non-empty list of values", hint=f"{name} = [{key.example()}, ...]"))
            out[name] = [_checked(path, text, table, name, key, v) for v in value]
        else:
            out[name] = _checked(path, text, table, name, key, value)
    return out


def _checked(path: Path, text: str, table: str | None, name: str, key: Key, value: Any) -> Any:
    try:
        return coerce(name, key, value)
    except ConfigError as exc:
        raise _at(path, text, table, name, exc) from None


def _at(path: Path, text: str, table: str | None, key: str | None, exc: ConfigError) -> ConfigError:
    """`exc` with the file and line in front, and a fix that says where in the file it goes."""
    section = f"[{table}] " if table and key else ""
    hint = exc.hint or ""
    if table and key and hint.startswith(f"{key} ="):
        hint = f"{hint}  under [{table}] in {Path(path).name}"
    return ConfigError(f"{where(path, text, table, key)}: {section}{exc.message}", hint=hint)
