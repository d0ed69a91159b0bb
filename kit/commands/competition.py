"""The competition as its host has it: `kit submissions`, `kit board`, `kit data`.

These show Kaggle's (or the practice competition's) own records, not kit's: `kit submissions` lists every
submission the competition knows, made by kit or not; `kit board` is the competition's public board, where
`kit runs` is kit's table of your runs (leaderboard.csv). Data goes to stdout (a table, or JSON with --json), progress and
hints to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kit.commands.common import backend_for as _backend, echo_err as _err, load_workspace as _ws, echo_json
from kit.errors import KitError

DATA_DIR = "data"


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.5f}"


def _table(header: list[str], rows: list[dict[str, str]], task=None) -> str:
    """The rows as a table; with the workspace's `task`, its best public and private scores highlighted (the
    smallest for a log loss)."""
    from kit.leaderboard.terminal import render_table, score_directions

    scores = score_directions(task) if task is not None else {}
    return render_table(header, rows, all_columns=True, color=sys.stdout.isatty(), scores=scores)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def submissions(as_json: bool) -> None:
    """The competition's submissions as it has them, kit's and others, with the run each came from: `kit submissions`."""
    from kit.runs import store
    from kit.runs.intent import credited_to

    ws = _ws()
    backend = _backend(ws)
    subs = backend.submissions()
    instance, runs = backend.competition_instance(), store.all_runs(ws)
    rows = [{"ref": s.ref, "run": credited_to(runs, s, instance), "date": s.date, "status": s.status,
             "public_score": s.public_score, "private_score": s.private_score, "description": s.description,
             "error": s.error} for s in subs]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        _err(f"no submissions to {ws.competition} yet: kit submit RUN")
        return
    header = ["ref", "run", "date", "status", "public_score", "private_score", "description"]
    click.echo(_table(header, [{**r, "public_score": _score(r["public_score"]), "private_score": _score(r["private_score"]),
                                "run": r["run"] or "-"} for r in rows], ws.task))
    outside = sum(1 for r in rows if not r["run"])
    if outside:
        _err(f"{outside} of {len(rows)} submissions were not made by kit in this workspace (run '-')")


@click.command()
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True, help="teams to show from the top (0: all)")
@click.option("--team", default="", help="your team's name on the board (default: your Kaggle username)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output (every team read)")
def board(top: int, team: str, as_json: bool) -> None:
    """The competition's leaderboard (its public board) and your rank on it: `kit board --top 20`.

    What `kaggle competitions leaderboard` shows. Your own runs and their scores are `kit runs` (kit's table)."""
    ws = _ws()
    backend = _backend(ws)
    entries = backend.board(team=team)
    mine = next((e for e in entries if e.you), None)
    if as_json:
        echo_json({"competition": ws.competition, "teams": len(entries),
                               "you": None if mine is None else mine.rank,
                               "board": [{"rank": e.rank, "team": e.team, "score": e.score, "date": e.date, "you": e.you} for e in entries]})
        return
    if not entries:
        _err(f"the public board of {ws.competition} is empty")
        return
    shown = [e for e in entries if not top or e.rank <= top or e.you]
    rows = [{"rank": str(e.rank), "team": e.team + ("  <- you" if e.you else ""), "score": _score(e.score), "date": e.date}
            for e in shown]
    click.echo(_table(["rank", "team", "score", "date"], rows))
    if mine is not None:
        _err(f"you: rank {mine.rank} of {len(entries)} with {_score(mine.score)} (public board)")
    else:
        name = team or "your username"
        _err(f"you are not among the {len(entries)} teams read (looked for {name!r}); kit board --team NAME if your team is named otherwise")


@click.command()
@click.option("--list", "list_only", is_flag=True, help="list the files and their sizes; download nothing")
@click.option("-f", "--file", "names", multiple=True, metavar="NAME", help="download only this file (repeatable)")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"folder to download into (default: {DATA_DIR}/COMPETITION, git-ignored)")
@click.option("--force", is_flag=True, help="download files that are already there")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def data(list_only: bool, names: tuple[str, ...], output: Path | None, force: bool, as_json: bool) -> None:
    """Download the competition's data to look at it: `kit data` (into data/COMPETITION/), `kit data --list`."""
    from kit import progress
    from kit.workspace.layout import ignore

    ws = _ws()
    backend = _backend(ws)
    files = backend.data_files()
    if names:
        known = {f.name for f in files}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise KitError(f"{ws.competition} has no data file {unknown[0]!r}", hint="kit data --list shows its files")
        files = [f for f in files if f.name in names]
    if list_only:
        if as_json:
            echo_json([{"name": f.name, "size": f.size, "created": f.created} for f in files])
        else:
            click.echo(_table(["name", "size", "created"], [{"name": f.name, "size": str(f.size), "created": f.created} for f in files]))
        return
    dest = output or ws.root / DATA_DIR / ws.competition
    if output is None:
        ignore(ws.root / ".gitignore", [f"{DATA_DIR}/"])  # data is the host's, not yours to commit
    todo = [f for f in files if force or not (dest / f.name).is_file() or (f.size and (dest / f.name).stat().st_size != f.size)]
    kept = len(files) - len(todo)
    total = sum(f.size for f in todo)
    paths: list[Path] = [dest / f.name for f in files if f not in todo]
    with progress.transfer(f"data of {ws.competition}", total or None) as bar:
        for f in todo:
            bar.note(f.name)
            paths.append(backend.download_data(f.name, dest, on_bytes=bar.update))
        got = sum(p.stat().st_size for p in paths if p.is_file())
        bar.done(f"{len(todo)} files downloaded ({progress.human_bytes(bar.count)}), {kept} already there; "
                 f"{len(files)} files, {progress.human_bytes(got)} in {dest}")
    if as_json:
        echo_json([{"name": f.name, "path": str(dest / f.name), "size": (dest / f.name).stat().st_size,
                                "downloaded": f in todo} for f in files])
        return
    for f in files:
        click.echo(str(dest / f.name))


COMMANDS = [submissions, board, data]
