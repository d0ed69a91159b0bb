"""Kaggle-only commands: `kit quota`, `kit doctor`, `kit deps push`. Each calls kit.backends.kaggle.* and prints."""

from __future__ import annotations

from pathlib import Path

import click

from kit.commands.common import load_workspace as _ws, echo_json
from kit.errors import KitError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def quota(as_json: bool) -> None:
    """GPU hours used and left this week, and today's submissions left: `kit quota`."""
    from kit.commands.common import backend_for

    ws = _ws()
    backend = backend_for(ws)
    if not backend.has_quota:
        _unmetered_quota(ws, backend, as_json)
        return
    q = backend.quota()
    if as_json:
        echo_json({"gpu_hours_used": round(q.gpu_hours_used, 3), "gpu_hours_left": round(q.gpu_hours_left, 3),
                               "gpu_hours_total": round(q.gpu_hours_total, 3), "quota_resets": q.refresh,
                               "submissions_left_today": q.submissions_left_today})
        return
    left = "unknown" if q.submissions_left_today is None else str(q.submissions_left_today)
    click.echo(f"gpu_hours_used\t{q.gpu_hours_used:.1f}")
    click.echo(f"gpu_hours_left\t{q.gpu_hours_left:.1f}")
    click.echo(f"gpu_hours_total\t{q.gpu_hours_total:.1f}")
    click.echo(f"quota_resets\t{q.refresh}")
    click.echo(f"submissions_left_today\t{left}")


def _unmetered_quota(ws, backend, as_json: bool) -> None:
    """A backend without a GPU quota (the local one: kernels run on this machine); its limit is the competition's."""
    from kit.commands.common import echo_err

    left = backend.submissions_left_today()
    if as_json:
        echo_json({"gpu_hours_used": None, "gpu_hours_left": None, "gpu_hours_total": None, "quota_resets": None,
                               "submissions_left_today": left})
    else:
        click.echo(f"submissions_left_today\t{left}")
    echo_err(f"the {ws.backend} backend has no GPU quota: kernels run on this machine")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output (the exit code still says whether all passed)")
def doctor(as_json: bool) -> None:
    """Check kernels build, and what the backend needs (on Kaggle: credentials, the competition's rules, GPU quota),
    one line each with its fix: `kit doctor`."""
    from kit.commands.common import backend_for

    ws = _ws()
    backend = backend_for(ws)
    checks = _build_checks(ws, backend.name) + _layout_checks(ws) + backend.doctor()
    if as_json:
        echo_json([{"check": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks])
    for check in checks if not as_json else []:
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"{mark}  {check.name}: {check.detail}")
        if not check.ok and check.fix:
            click.echo(f"      fix: {check.fix}")
    failed = [c for c in checks if not c.ok]
    if failed:
        raise KitError(f"{len(failed)} of {len(checks)} checks failed", hint=failed[0].fix or "see the lines above")


def _build_checks(ws, backend: str) -> list:
    """Whether each of the workspace's kernels builds for `backend` (into a temporary folder; nothing is kept)."""
    import tempfile

    from kit.backends.base import Check
    from kit.runs.lifecycle import build_for_workspace, resolve_config

    checks = []
    with tempfile.TemporaryDirectory(prefix="kit-doctor-") as tmp:
        for kernel in ("train", "infer"):
            try:
                config = resolve_config(ws, kernel, {}, backend)
                built = build_for_workspace(ws, kernel, config, Path(tmp) / kernel)
                checks.append(Check(f"{kernel} kernel builds", True, f"{built.script.stat().st_size // 1024} KiB script"))
            except KitError as exc:
                checks.append(Check(f"{kernel} kernel builds", False, exc.message, exc.hint or ""))
    return checks


def _layout_checks(ws) -> list:
    """A workspace made before kit's kernels stopped being a package: its kernels/__init__.py is imported as `kernels`
    by transformers (which imports Hugging Face's `kernels`) wherever the workspace root is on sys.path."""
    from kit.backends.base import Check

    if not (ws.kernels_dir / "__init__.py").is_file():
        return []
    return [Check("kernels/ is not a package", False, "kernels/__init__.py shadows Hugging Face's `kernels`, which transformers imports",
                  "delete kernels/__init__.py (kernels importing `kernels.runtime.<module>` still build; `runtime.<module>` is the new spelling)")]


@click.group()
def deps() -> None:
    """Offline dependencies (a wheel dataset) for internet-off kernels: `kit deps push`."""


@deps.command("push")
@click.option("--packages", default="", help="comma-separated pins (name==version) instead of the kernels' pinned set")
@click.option("--slug", default="", help="dataset slug (default kit-offline-wheels)")
@click.option("--find-links", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="take wheels from this local folder only (no index)")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where to build the wheel folder (default .kit/deps)")
def deps_push(packages: str, slug: str, find_links: Path | None, folder: Path | None) -> None:
    """Download wheels for the Kaggle image and create or version them as a private Kaggle dataset.

    Add the printed dataset to kernels that run with the internet off (it is a dataset source)."""
    from kit.backends.kaggle.deps import DEPS_SLUG, push_deps, read_pins

    ws = _ws()
    names = tuple(p.strip() for p in packages.split(",") if p.strip()) or read_pins(ws.kernels_dir).union
    folder = folder or ws.state_dir / "deps"
    click.echo(f"downloading {len(names)} wheels ({', '.join(names)}) into {folder}", err=True)
    from kit import progress
    from kit.backends.kaggle.upload import upload_progress

    with progress.transfer("upload wheels") as bar, upload_progress(bar.update):
        result = push_deps(ws, folder, names, slug=slug or DEPS_SLUG, find_links=find_links)
        bar.done(f"uploaded {progress.human_bytes(bar.count)} to {result.ref}")
    verb = "created" if result.created else "new version of"
    click.echo(f"{verb} {result.ref}: {len(result.wheels)} wheels", err=True)
    click.echo(f'attach it to internet-off kernels: wheels_dataset = "{result.ref}" under [train] and [infer] in kit.toml', err=True)
    click.echo(result.ref)


COMMANDS = [quota, doctor, deps]
