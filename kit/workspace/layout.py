"""The workspace: a folder with kit.toml at its root, found from any sub-folder."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kit.errors import ConfigError, KitError, WorkspaceError
from kit.workspace import schema
from kit.workspace.kernel_config import settings_table
from kit.workspace.schema import Key, Table
from kit.workspace.task_config import TASK_TABLE, Task, task_from_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WORKSPACE_FILE = "kit.toml"
BACKENDS = ("local", "kaggle")
PRACTICE_SLUG = "practice-math"
WORKSPACE_ID = re.compile(r"[a-z0-9]{4,12}")

KIT_TOML_TEMPLATE = """\
# kit workspace. Run settings below are the defaults of every push; `--set KEY=VALUE` overrides them.
# `kit build train --help-settings` lists every setting with its allowed values.

[competition]
# Kaggle competition slug (the practice competition's on the local backend)
slug = "{slug}"
# rows in the public leaderboard split, for score intervals and kit pick (0: unknown; the practice
# competition knows its own)
public_rows = {public_rows}
# final submissions the competition lets you select
final_picks = 3
# code competitions only: how long Kaggle's rerun of a submitted notebook may take (the rules say; most often 9)
# rerun_hours = 9

[backend]
# local: kernels run here as processes against the practice competition; kaggle: on Kaggle's GPUs
name = "{backend}"

[kaggle]
# owner of pushed kernels; credentials stay in ~/.kaggle or KAGGLE_API_TOKEN, never here
username = ""
# this workspace's short id, part of every kernel's name, so that two workspaces of one competition never share a
# kernel; made by kit init: keep it
workspace_id = "{workspace_id}"
# the Kaggle image every kernel of this workspace runs on, so that all its runs are comparable; kit records it from
# the first complete Kaggle run (empty: Kaggle's current image). pin_image = false under [train]/[infer] opts out
docker_image = ""

[train]
# learning_rate = 2e-4
# train_rows = 2000

[infer]
# batch_size = 16
"""


def _workspace_id(value: str) -> str:
    return "" if not value or WORKSPACE_ID.fullmatch(value) else "expected 4 to 12 lower-case letters or digits"


# A competition's slug as Kaggle writes it in its URL (kaggle.com/competitions/SLUG): lower-case letters and digits in
# dash-separated words. kit writes it into kernels' sources, ids and file paths, so nothing else gets that far.
COMPETITION_SLUG = re.compile(r"(?=[a-z0-9-]*[a-z])[a-z0-9]+(-[a-z0-9]+)*")
SLUG_FIX = 'slug = "llm-classification-finetuning" (the part after kaggle.com/competitions/ in its URL)'


def competition_slug_problem(value: str) -> str:
    """What is wrong with `value` as a competition slug ("" when it looks like Kaggle's)."""
    if COMPETITION_SLUG.fullmatch(value) and len(value) <= 100:
        return ""
    return "not a Kaggle competition slug (lower-case letters, digits and dashes)"


# kit.toml's tables and keys, each key declared once (type, default, allowed values, help); `kit.workspace.schema` checks the
# file against them when it is loaded, and `Workspace.value` reads them.
KIT_TOML: dict[str, Table] = {
    "competition": Table({
        "slug": Key(str, "", "Kaggle competition slug (the practice competition's on the local backend)", required=True,
                    check=competition_slug_problem, rule="a Kaggle competition slug such as llm-classification-finetuning", fix=SLUG_FIX),
        "public_rows": Key(int, 0, "rows in the public leaderboard split (0: unknown)", min=0),
        "final_picks": Key(int, 3, "final submissions the competition lets you select", min=1, max=100),
        "rerun_hours": Key(float, 0.0, "code competitions: how long Kaggle's rerun of a submitted notebook may take (0: the competition's default)", min=0.0),
    }),
    "backend": Table({"name": Key(str, "local", "where kernels run", choices=BACKENDS)}),
    "kaggle": Table({
        "username": Key(str, "", "owner of pushed kernels"),
        "workspace_id": Key(
            str, "", "this workspace's short id, part of every kernel's name", check=_workspace_id,
            fix="delete the line and kit makes a new one (later kernels get new names; pushed runs keep theirs)",
        ),
        "docker_image": Key(str, "", "the Kaggle image every kernel of this workspace runs on (empty: Kaggle's current one)"),
    }),
    "train": settings_table("train"),
    "infer": settings_table("infer"),
    "sweep": Table({"concurrency": Key(int, 0, "runs of a sweep at once (0: the backend's default)", min=0)}),
    "task": TASK_TABLE,
}


@dataclass(frozen=True)
class Workspace:
    """A parsed kit.toml and the paths that hang off its folder."""

    root: Path
    competition: str
    backend: str = "local"
    public_rows: int = 0
    final_picks: int = 3
    rerun_hours: float = 0.0  # code competitions' rerun time limit from kit.toml (0: the competition's default)
    kaggle_username: str = ""
    workspace_id: str = ""  # [kaggle] workspace_id: part of every kernel's name (kit.build.script.kernel_slug)
    docker_image: str = ""  # [kaggle] docker_image: the image kernels are pinned to, recorded from the first run
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # kit.toml's checked values, by table
    task_table: Task | None = None  # [task] as written; None: no [task] (the binary is_correct task)

    @property
    def task(self) -> Task:
        """The competition's task: kit.toml's [task], or the binary is_correct task where it has none."""
        return self.task_table or Task.default()

    def value(self, table: str, key: str) -> Any:
        """A kit.toml key's value, or its declared default when the file leaves it out."""
        spec = KIT_TOML[table].key_map()[key]
        return self.raw.get(table, {}).get(key, spec.default)

    @property
    def kernels_dir(self) -> Path:
        return self.root / "kernels"

    @property
    def submissions_dir(self) -> Path:
        return self.root / "submissions"

    @property
    def leaderboard_path(self) -> Path:
        return self.root / "leaderboard.csv"

    @property
    def state_dir(self) -> Path:
        """kit's private state (local backend sessions, the practice competition); not for people."""
        return self.root / ".kit"

    @property
    def practice_dir(self) -> Path:
        return self.state_dir / "practice" / self.competition

    def split_sizes(self) -> tuple[int, int | None]:
        """Rows of the public split and of the private split (None when unknown) of the competition.

        The local backend's practice competition knows its own split; on Kaggle it is kit.toml's public_rows."""
        if self.backend == "local":
            try:
                meta = json.loads((self.practice_dir / "competition.json").read_text(encoding="utf-8"))
                return int(meta["public_rows"]), int(meta["n_test"]) - int(meta["public_rows"])
            except (FileNotFoundError, KeyError, ValueError):
                pass
        return self.public_rows, None

    def run_defaults(self, kernel: str) -> dict[str, Any]:
        """Workspace defaults for `kernel`, with the competition filled in."""
        return {"competition": self.competition, **self.defaults.get(kernel, {})}


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd, or KIT_WORKSPACE) holding kit.toml."""
    env = os.environ.get("KIT_WORKSPACE")
    here = Path(env) if env else Path(start or Path.cwd())
    here = here.resolve()
    for folder in (here, *here.parents):
        if (folder / WORKSPACE_FILE).is_file():
            return folder
    raise WorkspaceError(f"no {WORKSPACE_FILE} in {here} or any folder above it", hint="kit init")


def load(start: Path | None = None) -> Workspace:
    """Find and parse the workspace's kit.toml, checked against KIT_TOML before anything runs."""
    root = find_root(start)
    path = root / WORKSPACE_FILE
    text = schema.read_text(path, "kit.toml")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", hint=f"fix the TOML syntax in {path}") from None
    checked = schema.check_document(path, text, data, KIT_TOML)
    ws = Workspace(root=root, competition="", raw=checked)
    return dataclasses.replace(
        ws,
        competition=ws.value("competition", "slug"),
        backend=ws.value("backend", "name"),
        public_rows=ws.value("competition", "public_rows"),
        final_picks=ws.value("competition", "final_picks"),
        rerun_hours=float(ws.value("competition", "rerun_hours")),
        kaggle_username=ws.value("kaggle", "username"),
        workspace_id=ws.value("kaggle", "workspace_id"),
        docker_image=ws.value("kaggle", "docker_image"),
        defaults={kernel: dict(checked.get(kernel, {})) for kernel in ("train", "infer")},
        task_table=task_from_toml(path, text, data.get("task")),
    )


def ignore(gitignore: Path, patterns: list[str]) -> None:
    """Add kit's private state to .gitignore, keeping what is there."""
    existing = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.is_file() else []
    missing = [p for p in patterns if p not in existing]
    if missing:
        text = "\n".join(existing + ["# kit's private state (local sessions, practice competition, locks)", *missing]) + "\n"
        from kit.fileio import atomic_write_text

        atomic_write_text(gitignore, text.lstrip("\n"))


def init(root: Path, slug: str = PRACTICE_SLUG, backend: str = "local", public_rows: int = 0, force: bool = False) -> Path:
    """Write kit.toml (and the folders a workspace has) in `root`; refuse to overwrite unless `force`."""
    if backend not in BACKENDS:
        raise ConfigError(f"bad backend {backend!r}; allowed: {', '.join(BACKENDS)}", hint="kit init --backend local")
    problem = competition_slug_problem(slug)
    if problem:
        raise ConfigError(f"bad competition {slug!r}: {problem}", hint="kit init --competition llm-classification-finetuning: the part after kaggle.com/competitions/ in its URL")
    root = Path(root)
    path = root / WORKSPACE_FILE
    if path.exists() and not force:
        raise WorkspaceError(f"{path} already exists", hint="edit it, or pass --force to replace it")
    from kit.build.templates import copy_templates
    from kit.fileio import atomic_write_text

    text = KIT_TOML_TEMPLATE.format(slug=slug, backend=backend, public_rows=public_rows, workspace_id=new_workspace_id())
    atomic_write_text(path, text)
    ensure_workspace_id(load(root))  # the id belongs to this folder (.kit/workspace.json)
    (root / "submissions").mkdir(exist_ok=True)
    ignore(root / ".gitignore", [".kit/", ".*.lock", "build/", "data/"])
    copy_templates(root / "kernels")
    return path


def new_workspace_id() -> str:
    """Six random lower-case letters and digits (36**6 ids: two workspaces of one person never meet)."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))


def set_value(root: Path, table: str, key: str, value: str, keep: bool = False) -> str:
    """Write `key = "value"` into `[table]` of kit.toml, keeping every other line (comments included) as it is:
    the key's line is replaced where there is one, else the key goes at the end of the table (made if missing).
    With `keep`, a non-empty value already there stays. Returns the value kit.toml holds afterwards."""
    from kit.fileio import atomic_write_text, locked

    path = Path(root) / WORKSPACE_FILE
    with locked(path):
        text = path.read_text(encoding="utf-8")
        current = tomllib.loads(text).get(table, {}).get(key)
        if keep and current:
            return str(current)
        lines = text.splitlines()
        entry = f"{key} = {json.dumps(value)}"
        start = next((i for i, line in enumerate(lines) if line.split("#")[0].strip() == f"[{table}]"), None)
        if start is None:
            lines += ["", f"[{table}]", entry]
        else:
            end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
            own = next((i for i in range(start + 1, end) if re.match(rf"\s*{re.escape(key)}\s*=", lines[i])), None)
            if own is not None:
                lines[own] = entry
            else:
                last = max((i for i in range(start, end) if lines[i].strip()), default=start)
                lines.insert(last + 1, entry)
        text = "\n".join(lines) + "\n"
        if tomllib.loads(text).get(table, {}).get(key) != value:  # never write a kit.toml that reads differently
            raise ConfigError(f"{path}: cannot record {key} under [{table}]", hint=f'add  {entry}  under [{table}] by hand')
        atomic_write_text(path, text)
    return value


IDENTITY_FILE = "workspace.json"  # in .kit/: the folder kit.toml's workspace_id belongs to


def ensure_workspace_id(ws: Workspace, say: Callable[[str], None] = lambda line: None) -> str:
    """The workspace's id, made and recorded in kit.toml the first time a workspace without one needs it.

    The id names every kernel the workspace pushes, so it belongs to one folder (.kit/workspace.json). A copy of
    the workspace (`cp -r`, or a clone of a repository holding kit.toml, which brings no .kit/) takes its own id the
    first time it needs one, and `say`s so: two copies never push to one kernel nor pull each other's outputs. Runs
    already pushed keep their kernels (their records name them). A workspace moved (its old folder gone) keeps it."""
    from kit.fileio import atomic_write_json, locked

    marker = ws.state_dir / IDENTITY_FILE
    here = str(Path(ws.root).resolve())
    with locked(marker):
        current = _read_toml_id(ws.root) or ws.workspace_id
        owner = _identity(marker)
        copy_of = ""
        if current and owner is None and not _has_state(ws.state_dir, marker):
            copy_of = "a clone or copy of another (no .kit/ came with it)"
        elif current and owner is not None and owner != (current, here) and owner[0] == current and _holds(owner[1], current):
            copy_of = f"a copy of the one at {owner[1]}"
        if copy_of or not current:
            fresh = new_workspace_id()
            set_value(ws.root, "kaggle", "workspace_id", fresh)
            if copy_of:
                say(f"this workspace is {copy_of}, with the same workspace_id ({current}) in kit.toml: it takes its own, {fresh}, "
                    f"so that the two never push to one Kaggle kernel (runs pushed already keep theirs)")
            current = fresh
        if owner != (current, here):
            atomic_write_json(marker, {"workspace_id": current, "root": here})
    return current


def _read_toml_id(root: Path) -> str:
    """kit.toml's [kaggle] workspace_id as the file says now (another command may have changed it)."""
    import tomllib

    try:
        return str(tomllib.loads((Path(root) / WORKSPACE_FILE).read_text(encoding="utf-8")).get("kaggle", {}).get("workspace_id", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return ""


def _identity(marker: Path) -> tuple[str, str] | None:
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        return str(data["workspace_id"]), str(data["root"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _has_state(state_dir: Path, marker: Path) -> bool:
    """Whether .kit/ holds anything but the identity's own lock: a workspace used here before (by an older kit)."""
    lock = marker.with_name(f".{marker.name}.lock")
    return state_dir.is_dir() and any(p != lock for p in state_dir.iterdir())


def _holds(root: str, workspace_id: str) -> bool:
    """Whether the workspace at `root` still exists with `workspace_id` (so this one is its copy, not it moved)."""
    return (Path(root) / WORKSPACE_FILE).is_file() and _read_toml_id(Path(root)) == workspace_id


def rewrite_checked(root: Path, text: str) -> Path:
    """Write kit.toml's new `text`, kept only where the workspace loads with it: else the file is put back as it was
    and the load's error raised. Returns kit.toml's path."""
    from kit.fileio import atomic_write_text

    path = Path(root) / WORKSPACE_FILE
    before = path.read_text(encoding="utf-8")
    atomic_write_text(path, text)
    try:
        load(Path(root))
    except KitError:
        atomic_write_text(path, before)
        raise
    return path

