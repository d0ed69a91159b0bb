"""kit's command line: each command parses, calls one domain function, and prints the result.

Data goes to stdout, progress and hints to stderr. A KitError prints one line plus a hint and exits 1; a
traceback only with KIT_DEBUG=1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import click

from kit.commands.common import load_workspace as _ws, backend_for as _backend, echo_err as _err, echo_json, warn_damaged as _warn_damaged
from kit.errors import KitError


class KitGroup(click.Group):
    """Lists commands in the order they are used, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with what it does and, beneath it, an example (the `...` part of its first line)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            first = (command.help or "").strip().splitlines()[0] if command.help else ""
            what, _, example = first.partition(": `")
            rows.append((name, what.rstrip("."), example.split("`")[0]))
        if not rows:
            return
        width = max(len(name) for name, _, _ in rows)
        with formatter.section("Commands"):
            pad = " " * formatter.current_indent
            for name, what, example in rows:
                formatter.write(f"{pad}{name:<{width}}  {what}\n")
                if example:
                    formatter.write(f"{pad}{'':<{width}}    $ {example}\n")


@click.group(cls=KitGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="kit", message="kit %(version)s")
def cli() -> None:
    """kit: fine-tune LLMs for a Kaggle competition from this repository.

    \b
    The loop:
      kit practice init                  a practice competition on this machine
      kit push-kernel train --wait       train, predict, pull the outputs (run-N)
      kit submit run-1                   validate and submit run-1's submission.csv
      kit runs                           your runs with their settings and scores (kit's table, leaderboard.csv)
      kit board                          the competition's leaderboard (its public board) and your rank on it

    \b
    Data goes to stdout (--json where a command prints data), progress and hints to stderr.
    Exit codes: 0 done; 1 an error kit explains in one line with a hint (bad input, a refused
    submission, a run that failed or was cancelled under --wait, a Kaggle failure); 2 bad usage
    (an unknown option or a missing argument); 130 interrupted (Ctrl-C).
    KIT_PROGRESS=0 hides progress bars (KIT_PROGRESS_EVERY=SECONDS: how often a wait off a terminal says where a
    run is, 60 by default), KIT_DEBUG=1 shows tracebacks.
    """


# -- workspace ---------------------------------------------------------------------------------------------


@cli.command()
@click.option("--competition", default="practice-math", show_default=True, help="competition slug")
@click.option("--backend", type=click.Choice(["local", "kaggle"]), default="local", show_default=True)
@click.option("--force", is_flag=True, help="replace an existing kit.toml")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the competition's files to propose [task] from (default: data/SLUG, else the backend's, downloaded)")
def init(competition: str, backend: str, force: bool, data_dir: Path | None) -> None:
    """Write kit.toml here and copy the kernel templates: `kit init --backend kaggle --competition SLUG`.

    With the competition's files at hand (--data, data/SLUG or the practice competition's), it also proposes the
    [task] and says what it guessed and what to check."""
    from kit.workspace import layout
    from kit.commands.task import print_proposal
    from kit.workspace.task_proposal import propose_task, write_task

    path = layout.init(Path.cwd(), slug=competition, backend=backend, force=force)
    click.echo(str(path))
    proposal, note = propose_task(Path.cwd(), data_dir)
    if proposal is None:
        _err(f"no [task] proposed ({note}; kit data, then kit task propose --write); without one, kit does the binary is_correct task")
    else:
        write_task(Path.cwd(), proposal)
        _err(f"[task] proposed from {note} and written to {path.name}")
        print_proposal(proposal)
    _err("next: kit practice init  (local backend), then kit push-kernel train --wait")


@cli.group(cls=KitGroup)
def practice() -> None:
    """The practice competition on this machine: `kit practice init`, `kit practice close`."""


@practice.command("init")
@click.option("--seed", default=0, show_default=True, help="fixes the data and the public/private split")
@click.option("--train-rows", default=20000, show_default=True)
@click.option("--test-rows", default=2000, show_default=True)
@click.option("--daily-limit", default=5, show_default=True, help="submissions a day")
@click.option("--force", is_flag=True, help="replace an existing practice competition (its submissions are lost)")
@click.option("--code", is_flag=True, help="a code competition: submitted kernels are rerun on hidden test rows")
@click.option("--rerun-limit", default=9 * 3600, show_default=True, help="code competitions: seconds a rerun may take")
@click.option("--task", "shape", type=click.Choice(["binary", "multiclass", "topk", "pairwise", "ordinal", "answer"]), default="binary",
              show_default=True, help="the competition's shape; kit.toml's [task] is set to match (answer: the integer answer of a word problem, generated)")
@click.option("--server", is_flag=True, help="--task answer: an inference-server competition (its files ship kaggle_evaluation)")
@click.option("--call-seconds", default=30 * 60.0, show_default=True, help="--server: the gateway's deadline for each call after the first")
@click.option("--startup-seconds", default=15 * 60.0, show_default=True, help="--server: how soon the kernel must be serving")
def practice_init(seed: int, train_rows: int, test_rows: int, daily_limit: int, force: bool, code: bool, rerun_limit: int, shape: str,
                  server: bool, call_seconds: float, startup_seconds: float) -> None:
    """Create the practice competition: `kit practice init --test-rows 500` (`--code`: a code competition; `--task
    pairwise`: another shape, kit.toml's [task] set to it; `--task answer --server`: generated answers served to the
    competition's gateway)."""
    from kit.practice.answer_competition import ServerRules, task_table
    from kit.practice.competition import VISIBLE_TEST_ROWS, init_practice
    from kit.practice.shape_competition import set_workspace_task
    from kit.practice.shapes import SHAPE_DEFINITIONS

    ws = _ws()
    if ws.backend != "local":
        raise KitError(
            f"this workspace uses the {ws.backend} backend; the practice competition is the local backend's",
            hint='set name = "local" under [backend] in kit.toml, or kit init in another folder',
        )
    if server and shape != "answer":
        raise KitError("--server makes an inference-server competition of generated answers", hint="kit practice init --task answer --server")
    rules = ServerRules(call_seconds=call_seconds, startup_seconds=startup_seconds) if server else None
    if rules is not None and not 0 < call_seconds <= rerun_limit:
        raise KitError(f"--call-seconds {call_seconds:g} must be more than 0 and at most the rerun's {rerun_limit} s", hint="--call-seconds 1800")
    comp = init_practice(ws.practice_dir, slug=ws.competition, seed=seed, n_train=train_rows, n_test=test_rows, daily_limit=daily_limit,
                         force=force, code=code, rerun_seconds=rerun_limit, task=shape, server=rules)
    click.echo(str(comp.data_dir))
    described = "" if shape == "binary" else f" ({shape}, {comp.task_table['metric']['name'] if comp.task_table else 'accuracy'})"
    _err(f"{ws.competition}{described}: {train_rows} train rows, {test_rows} test rows ({comp.public_rows} public); {daily_limit} submissions a day")
    if shape == "answer":  # integer answers of math word problems, generated and read from \boxed{}
        changed = set_workspace_task(ws.root, shape, task_table(comp.server, comp.rerun_seconds))
    else:
        changed = set_workspace_task(ws.root, shape, SHAPE_DEFINITIONS[shape].task if shape in SHAPE_DEFINITIONS else None)
    if changed:
        _err(changed)
    if server:
        _err(f"an inference-server competition: its kaggle_evaluation gateway calls the kernel's predict one row at a time on the "
             f"rerun ({call_seconds:g} s a call after the first, serving within {startup_seconds:g} s); push with --set enable_internet=false to submit")
    elif code:
        _err(f"a code competition: kernels see {min(VISIBLE_TEST_ROWS, test_rows)} test rows; a submitted kernel is rerun on all "
             f"{test_rows} with the internet off, within {rerun_limit} s; push with --set enable_internet=false to submit")


@practice.command("close")
def practice_close() -> None:
    """End the practice competition and reveal private scores: `kit practice close`."""
    from kit.practice.competition import PracticeCompetition
    from kit.submissions.submit import refresh_scores

    ws = _ws()
    PracticeCompetition(ws.practice_dir).close()
    refresh_scores(ws, _backend(ws))
    _err("closed: private scores are in leaderboard.csv (kit runs)")


# -- kernels and runs --------------------------------------------------------------------------------------


@cli.command()
@click.argument("kernel")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a setting (repeatable)")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="folder to write (default: build/KERNEL)")
@click.option("--help-settings", is_flag=True, help="list the kernel's settings with their defaults and exit")
@click.option("--explain", is_flag=True, help="print the plan the run would get (engine, dtype, packing, memory...) and build nothing")
@click.option("--gpu", metavar="PROFILE", help="with --explain: the machine to plan for (cpu, t4, t4x2, p100, l4, l4x4, a100, "
              "a100-80gb, h100, h200); default on the Kaggle backend: the run's machine_shape; required on the local backend")
@click.option("--json", "as_json", is_flag=True, help="with --explain: plan.json as the kernel writes it")
def build(kernel: str, sets: tuple[str, ...], output: Path | None, help_settings: bool, explain: bool, gpu: str | None, as_json: bool) -> None:
    """Build a kernel folder (one script + kernel-metadata.json): `kit build train --set r=64 -o build/train`.

    `kit build train --explain --gpu t4x2` prints the plan the kernel would make on that machine, with the same
    make_plan (the workspace's kernels/runtime/plan.py), without running or building anything."""
    from kit.runs.lifecycle import build_for_workspace, resolve_config
    from kit.workspace.kernel_config import parse_assignments

    plan_flags = [flag for flag, given in (("--gpu", gpu), ("--json", as_json)) if given]
    if plan_flags and not explain:  # refused rather than building a kernel folder the user did not ask for
        raise KitError(f"{' and '.join(plan_flags)} {'needs' if len(plan_flags) == 1 else 'need'} --explain "
                       "(without it kit build builds the kernel folder)",
                       hint=f"kit build {kernel} --explain" + (f" --gpu {gpu}" if gpu else "") + (" --json" if as_json else ""))
    if help_settings:
        _print_settings(kernel)
        return
    ws = _ws()
    config = resolve_config(ws, kernel, parse_assignments(sets, f"kit build {kernel}"), ws.backend)
    if explain:
        from kit.build.explain import explain as make_explained

        plan = make_explained(ws, kernel, config, gpu)
        click.echo(json.dumps(plan.to_json(), indent=1) if as_json else plan.table())
        for warning in plan.warnings():
            _err(f"warning: {warning}")
        return
    built = build_for_workspace(ws, kernel, config, output or ws.root / "build" / kernel)
    click.echo(str(built.directory))
    from kit.build.explain import settings_warnings

    for warning in settings_warnings(ws, kernel, config):
        _err(f"warning: {warning}")


def _print_settings(kernel: str) -> None:
    import dataclasses

    from kit.workspace.kernel_config import config_class

    for f in dataclasses.fields(config_class(kernel)):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        choices = f" [{'|'.join(f.metadata['choices'])}]" if "choices" in f.metadata else ""
        click.echo(f"{f.name:<24} {default!r:<28} {f.metadata.get('help', '')}{choices}")


def _code_competition_warning(backend, record) -> str:
    """A push to a code competition that could not be submitted says so; the push itself has happened already, so a
    failure to learn the competition's kind is not an error here (kit submit asks again)."""
    from kit.submissions.code_checks import push_warning

    try:
        return push_warning(backend.competition_info(), record)
    except KitError:
        return ""


@cli.command("push-kernel")
@click.argument("kernel")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a setting (repeatable)")
@click.option("--wait/--detach", default=False, help="follow the run to its end and pull its outputs, or return at once")
def push_kernel(kernel: str, sets: tuple[str, ...], wait: bool) -> None:
    """Push a kernel as a new run and print its id: `kit push-kernel train --set learning_rate=1e-4 --wait`."""
    from kit.runs.lifecycle import push_kernel as push
    from kit.workspace.kernel_config import parse_assignments

    ws = _ws()
    backend = _backend(ws)
    record = push(ws, backend, kernel, parse_assignments(sets, f"kit push-kernel {kernel}"))
    click.echo(record.id)
    for warning in [*backend.warnings, _code_competition_warning(backend, record)]:
        if warning:
            _err(f"warning: {warning}")
    if not wait:
        _err(f"follow it:  kit status {record.id}  |  kit logs {record.id} -f  |  kit pull {record.id}")
        return
    _wait_and_pull(ws, backend, record)


def _wait_and_pull(ws, backend, record) -> None:
    """Follow the run to its end and pull its outputs; a run that ends in error or cancelled is a KitError. Off a
    terminal a line says where the run is at least every KIT_PROGRESS_EVERY seconds (a minute), with the kernel's
    last training step; Ctrl-C stops following, not the run."""
    from kit import progress
    from kit.errors import StoppedFollowing
    from kit.runs.follow import last_progress, line_interval
    from kit.runs.lifecycle import log_tail, wait

    last = {"status": None, "line_at": 0.0}
    every = line_interval()
    if not record.status.final:
        _err(f"{record.id}: following it until it ends (Ctrl-C stops following, not the run; kit wait {record.id} follows it again)")
    with progress.waiting(record.id) as bar:

        def on_progress(r, elapsed: float) -> None:
            note = r.status.value
            if bar.drawn and backend.live_logs:
                note = f"{note}  {log_tail(backend.logs(r), 1).split(chr(13))[-1]}"[: shutil.get_terminal_size().columns - 30]
            bar.note(note)
            if not bar.drawn and r.status != last["status"]:  # a log or CI: one line per change of state
                bar.write(f"{r.id}  {r.status.value:<9} {progress.clock(elapsed)}")
                last["line_at"] = elapsed
            elif not bar.drawn and not r.status.final and elapsed - last["line_at"] >= every:  # and one a minute
                step = last_progress(_logs_or_empty(backend, r), r.config)
                where = step.line() if step else "no training step logged yet"
                bar.write(f"{r.id}  {r.status.value:<9} {progress.clock(elapsed)}  {where}")
                last["line_at"] = elapsed
            last["status"] = r.status

        try:
            record = wait(ws, backend, record, on_progress=on_progress, max_poll_seconds=min(backend.max_poll_seconds, every))
        except KeyboardInterrupt:
            bar.stop()
            raise StoppedFollowing(f"{record.id}: kit stopped following it after {progress.clock(bar.elapsed)}; the run goes on",
                                   hint=f"kit wait {record.id} follows it again; kit status {record.id} shows where it is") from None
        bar.done(f"{record.id} {record.status.value} after {progress.clock(bar.elapsed)}")
    if record.status.value == "error":
        tail = log_tail(backend.logs(record))
        if tail:  # what the kernel was doing when it ended: context, while the error says what ended it
            _err(f"{record.id}'s log, last lines (context):\n{tail}")
        raise KitError(f"{record.id} failed: {record.message}", hint=f"kit logs {record.id}")
    if record.status.value == "cancelled":
        raise KitError(f"{record.id} was cancelled", hint=f"kit logs {record.id}; push it again with kit push-kernel {record.kernel}")
    if record.status.value == "complete":
        _pull_with_bar(ws, backend, record)
        _print_summary(ws, record)
        _err(f"next: kit submit {record.id}")


@cli.command("wait")
@click.argument("run")
def wait_cmd(run: str) -> None:
    """Follow a run until it ends and pull its outputs; exit 1 if it failed or was cancelled: `kit wait run-3`."""
    from kit.runs import store

    ws = _ws()
    backend = _backend(ws)
    record = store.load(ws, run)
    if not record.remote and not record.status.final:
        raise KitError(f"{record.id} was never started ({record.message or record.status.value})", hint=f"kit status {record.id}")
    _wait_and_pull(ws, backend, record)
    click.echo(record.id)


def _logs_or_empty(backend, record) -> str:
    """The run's log so far, or "" where it cannot be read now (a progress line is not worth failing a wait for)."""
    try:
        return backend.logs(record)
    except KitError:
        return ""


def _pull_with_bar(ws, backend, record, all_files: bool = False) -> list[str]:
    from kit import progress
    from kit.runs.lifecycle import pull

    with progress.transfer(f"pull {record.id}") as bar:
        files = pull(ws, backend, record, all_files=all_files, on_bytes=bar.update)
        bar.done(f"pulled {len(files)} files ({progress.human_bytes(bar.count)}) into {ws.submissions_dir / record.id}")
    return files


def _print_summary(ws, record) -> None:
    """What the run trained, against the majority class, and what to run next (stderr: it is a reading aid)."""
    from kit.leaderboard.summary import summarize

    baselines = None
    if ws.backend == "local":  # the practice board scores always-True and always-False on the public rows
        try:
            board = _backend(ws).board()
            baselines = {e.team.rsplit(" ", 1)[-1]: e.score for e in board if e.team.startswith("baseline: all ")}
        except KitError:
            pass
    summary = summarize(ws, record, baselines)
    for line in summary.lines() if summary else []:
        _err(line)


@cli.command()
@click.argument("run", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(run: str | None, as_json: bool) -> None:
    """Show a run's state (all runs without RUN): `kit status run-3`."""
    from kit.runs import store
    from kit.runs.lifecycle import log_tail, refresh_each

    ws = _ws()
    backend = _backend(ws)
    # One run's damaged record or unknown kernel shows on its own line; the other runs are still refreshed. A push
    # or submission left unfinished is reconciled first where the backend can be asked.
    records, damaged = ([store.load(ws, run)], []) if run else store.scan(ws)
    checked = refresh_each(ws, backend, [_resolve_pending(ws, backend, r) for r in records])
    if run and checked[0][1] is not None:
        raise checked[0][1]
    checked = _with_fresh_scores(ws, backend, checked)
    records = [r for r, _ in checked]
    # A running run's last training step, from its log: every run of one asked for, all of them where logs are cheap.
    steps = {r.id: _last_step(backend, r) for r in records if r.status.value == "running" and (run or backend.live_logs)}
    if as_json:
        rows = [{**r.to_json(), **({"progress": steps[r.id].to_json() if steps[r.id] else None} if r.id in steps else {}),
                 **({"error": e.message, "fix": e.hint} if e else {})} for r, e in checked]
        rows += [{"id": d.run_id, "status": "damaged", "error": d.message, "fix": d.hint} for d in damaged]
        echo_json(rows)
        return
    if not records and not damaged:
        _err("no runs yet: kit push-kernel train")
        return
    from kit.runs.lifecycle import never_started

    for r, problem in checked:
        note = f"cannot refresh: {problem.message}" if problem else r.message
        if not problem and never_started(ws, r):
            note = f"never reached {backend.name} (kit stopped before pushing it): kit cancel {r.id} clears it"
        if not problem and steps.get(r.id):
            note = steps[r.id].line()
        click.echo(f"{r.id:<8} {r.kernel:<6} {r.status.value:<9} {r.backend:<6} {r.created}  {r.gpu or '-':<12} {note}".rstrip())
        if problem and problem.hint:
            _err(f"hint: {r.id}: {problem.hint}")
        if r.pending is not None:
            from kit.runs.intent import describe

            click.echo(f"{'':<8} {describe(r.id, r.pending)}")
        for sub in r.submissions:
            if sub.status == "pending":  # made, not scored yet (a `kit submit --wait` that Ctrl-C stopped waiting)
                click.echo(f"{'':<8} submission {sub.ref} of {sub.date} is pending (not scored yet): kit scores fetches its score")
            elif sub.status == "error" and sub.error:  # a failed rerun: its error and, for Kaggle's gateway classes, what it means
                from kit.submissions.code_checks import explain_rerun_error

                meaning = explain_rerun_error(sub.error)
                click.echo(f"{'':<8} submission {sub.ref} failed: {sub.error.split(' (log: ')[0]}" + (f" ({meaning.split(': ', 1)[1]})" if meaning else ""))
    for d in damaged:
        click.echo(f"{d.run_id:<8} damaged  {d.message}")
        _err(f"hint: {d.run_id}: {d.hint}")
    if run and records[0].status.value == "error" and records[0].remote:  # a push that failed has no log
        click.echo(log_tail(backend.logs(records[0])))
    if run and records[0].status.value == "complete":
        _print_summary(ws, records[0])


def _last_step(backend, record):
    from kit.runs.follow import last_progress

    return last_progress(_logs_or_empty(backend, record), record.config)


def _with_fresh_scores(ws, backend, checked):
    """Runs with a submission still pending get its news first (one ask of the competition for all of them); the
    competition not answering leaves them as they were."""
    if not any(sub.status == "pending" for r, _ in checked for sub in r.submissions):
        return checked
    from kit.submissions.submit import refresh_scores

    try:
        fresh = {r.id: r for r in refresh_scores(ws, backend)}
    except KitError as exc:
        _err(f"pending submissions not refreshed: {exc.message}")
        return checked
    return [(fresh.get(r.id, r), problem) for r, problem in checked]


def _resolve_pending(ws, backend, record):
    """A run with a push or submission left unfinished: ask the backend what happened and record it, unless
    another kit command is working on the run (it resolves it itself) or the backend cannot be asked (the run
    is listed with the unresolved intent and the command that resolves it)."""
    if record.pending is None:
        return record
    from kit.fileio import LockBusy
    from kit.runs import intent, store

    try:
        with store.action(ws, record.id, "status", wait=False):
            return intent.resolve(ws, backend, record.id, _err, patient=False)
    except LockBusy:
        return record
    except KitError as exc:
        _err(f"{record.id}: {exc.message}")
        return store.load(ws, record.id)


@cli.command()
@click.argument("run")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines until the run ends")
@click.option("-n", "--tail", "tail", type=click.IntRange(min=0), default=None, metavar="N", help="start with the last N lines only")
def logs(run: str, follow: bool, tail: int | None) -> None:
    """Print a run's log: `kit logs run-3 --tail 20 -f`."""
    from kit.runs import store

    ws = _ws()
    backend = _backend(ws)
    record = store.load(ws, run)
    shown = 0
    if tail is not None:
        text = backend.logs(record)
        shown = _tail_start(text, tail)
    try:
        _print_log(ws, backend, record, shown, follow)
    except KeyboardInterrupt:
        if not follow:
            raise
        from kit.errors import StoppedFollowing

        raise StoppedFollowing(f"{record.id}: kit stopped following its log; the run goes on",
                               hint=f"kit logs {record.id} -f follows it again; kit wait {record.id} follows it to its end") from None


def _print_log(ws, backend, record, shown: int, follow: bool) -> None:
    """Print the log from character `shown` on; with `follow`, new lines as they come until the run ends."""
    from kit.runs.lifecycle import refresh

    while True:
        text = backend.logs(record)
        click.echo(text[shown:], nl=False)
        shown = len(text)
        if not follow:
            return
        record = refresh(ws, backend, record)
        if record.status.final:
            text = backend.logs(record)
            click.echo(text[shown:], nl=False)
            return
        # A remote log is an API call: follow it gently rather than every second.
        time.sleep(1.0 if backend.live_logs else backend.max_poll_seconds / 2)


def _tail_start(text: str, lines: int) -> int:
    """Where the last `lines` lines of `text` begin (a trailing newline ends the last line, not a new one)."""
    if lines == 0:
        return len(text)
    end = len(text) - 1 if text.endswith("\n") else len(text)
    start = end
    for _ in range(lines):
        start = text.rfind("\n", 0, start)
        if start < 0:
            return 0
    return start + 1


@cli.command()
@click.argument("run")
@click.option("--all", "all_files", is_flag=True, help="every output file (adapter, checkpoints), not just the ones you read")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def pull(run: str, all_files: bool, as_json: bool) -> None:
    """Download a run's outputs into submissions/RUN/: `kit pull run-3`."""
    from kit.runs import store

    ws = _ws()
    record = store.load(ws, run)
    files = _pull_with_bar(ws, _backend(ws), record, all_files=all_files)
    paths = [str(ws.submissions_dir / record.id / name) for name in files]
    if as_json:
        echo_json(paths)
    else:
        click.echo("\n".join(paths))


@cli.command()
@click.argument("run")
def cancel(run: str) -> None:
    """Stop a queued or running run: `kit cancel run-3`."""
    from kit.runs import store
    from kit.runs.lifecycle import refresh

    from kit.runs.lifecycle import clear_unstarted, never_started

    ws = _ws()
    backend = _backend(ws)
    record = store.load(ws, run)
    if never_started(ws, record):
        _err(f"{record.id}: it never reached {backend.name}; now {clear_unstarted(ws, record).status.value}")
        return
    backend.cancel(record)
    _err(f"{record.id}: cancel requested (now {refresh(ws, backend, record).status.value})")


# -- competition -------------------------------------------------------------------------------------------


SCORE_WAIT_SECONDS = 600  # `kit submit --wait`: most scores come within minutes


@cli.command()
@click.argument("run")
@click.option("-m", "--message", default="", help="submission description")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--again", is_flag=True, help="submit a file that was already submitted for this run")
@click.option("--wait", "wait_score", is_flag=True, help="wait for the public score")
@click.option("--timeout", type=click.FloatRange(min=1, max=7 * 86400), default=None, metavar="SECONDS",
              help=f"how long --wait waits for the score (default {SCORE_WAIT_SECONDS}; implies --wait)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def submit(run: str, message: str, yes: bool, again: bool, wait_score: bool, timeout: float | None, as_json: bool) -> None:
    """Validate and submit a run's submission.csv: `kit submit run-3 -m "r=64, lr 1e-4" --yes`."""
    from kit.submissions.submit import prepare, submit as do_submit, wait_for_score

    ws = _ws()
    backend = _backend(ws)
    plan = prepare(ws, backend, run, allow_resubmit=again)
    left = "unknown" if plan.left_today is None else str(plan.left_today)
    share = "" if plan.file_name != "submission.csv" else f", {plan.valid.true_share:.1%} True"
    _err(f"{plan.record.id}: {plan.valid.rows} rows{share}; submissions left today: {left}")
    if plan.note:
        _err(plan.note)
    if plan.valid.changes:
        _err(f"normalized for upload: {'; '.join(plan.valid.changes)}")
        _err(f"uploading kit's copy {plan.valid.path}; {plan.valid.source} is unchanged")
    what = f"{plan.record.id}'s kernel" if plan.code else str(plan.valid.source or plan.valid.path)
    if not yes and not click.confirm(f"Submit {what} to {ws.competition}?", err=True):
        raise KitError("not submitted", hint=f"kit submit {run} --yes skips the question")
    sub = do_submit(ws, backend, plan, message, allow_resubmit=again)
    if (wait_score or timeout is not None) and sub.status not in ("complete", "error"):
        sub = wait_for_score(ws, backend, plan.record.id, sub.ref, timeout=timeout or SCORE_WAIT_SECONDS)
    score = "pending" if sub.public_score is None else f"{sub.public_score:.5f}"
    if as_json:
        echo_json({"run": plan.record.id, "ref": sub.ref, "status": sub.status, "public_score": sub.public_score,
                               "private_score": sub.private_score, "error": sub.error, "file": str(plan.valid.path), "kernel": sub.kernel,
                               "submissions_left_today": plan.left_today})
    else:
        click.echo(f"{plan.record.id}  submission {sub.ref}  {sub.status}  public {score}")
    if sub.status == "error":
        from kit.submissions.code_checks import explain_rerun_error

        raise KitError(f"submission {sub.ref} failed: {sub.error}", hint=explain_rerun_error(sub.error) or "kit scores")


@cli.command()
def scores() -> None:
    """Refresh every submission's status and scores into leaderboard.csv: `kit scores`."""
    from kit.submissions.submit import refresh_scores

    ws = _ws()
    changed = refresh_scores(ws, _backend(ws))
    _err(f"{len(changed)} runs updated; {ws.leaderboard_path}")
    _warn_damaged(ws)


@cli.command("runs")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--where", "conditions", default="", metavar="SQL",
              help="""keep rows meeting a SQL condition: "val_accuracy > 0.8 AND prompt = 'grader'" (text in single quotes; """
                   "OR, NOT, IN, BETWEEN, LIKE, IS NULL)")
@click.option("--sort", "sort_col", default=None, help="column to sort by, largest first (with --ascending the smallest: the best of a log loss or RMSE)")
@click.option("--ascending", is_flag=True, help="sort smallest first")
@click.option("--group-by", "group_by", default="", metavar="COLS", help="one row per value of these columns (comma-separated)")
@click.option("--metric", "metrics", default="", metavar="COLS", help="columns to summarise per group (default: the scores)")
@click.option("--agg", "aggregates", default="mean,best", show_default=True, help="per group: mean, best, min, count")
@click.option("--all-columns", is_flag=True, help="show every column, uncut (default: the columns that tell runs apart and "
              "every column you added, within --width)")
@click.option("--width", type=click.IntRange(min=40), default=120, show_default=True, help="the table's width in characters")
def leaderboard_cmd(as_json: bool, conditions: str, sort_col: str | None, ascending: bool, group_by: str, metrics: str,
                    aggregates: str, all_columns: bool, width: int) -> None:
    """Your runs with their settings and scores (kit's table, leaderboard.csv), filtered, sorted or grouped: `kit runs --where "val_accuracy > 0.8" --group-by prompt`.

    Not the competition's leaderboard: that is `kit board`. `kit leaderboard` is this command's old name."""
    from kit.commands.common import table_json
    from kit.leaderboard import sheet
    from kit.leaderboard.terminal import choose_columns, left_out, render_table, score_directions

    ws = _ws()
    header, rows = sheet.load_table(ws)
    scores = score_directions(ws.task)  # the best of a log loss is its smallest
    if rows and (conditions or sort_col or group_by):
        from kit.leaderboard.analysis import analyse  # polars: only when there is something to analyse

        header, rows = analyse(header, rows, conditions=conditions, sort_by=sort_col or "", ascending=ascending,
                               group_by=group_by, metrics=metrics, aggregates=aggregates, scores=scores)
    if as_json:  # leaderboard.csv holds text: its numbers are given as numbers, its blanks as null
        echo_json(table_json(rows))
        return
    if not rows:
        _err("no runs match" if conditions and header else "no runs yet: kit push-kernel train --wait")
        return
    every = all_columns or bool(group_by)
    columns = choose_columns(header, rows, all_columns=every, width=width, scores=scores)
    click.echo(render_table(header, rows, all_columns=every, color=sys.stdout.isatty(), columns=columns.shown, scores=scores))
    if left_out(columns, width):
        _err(left_out(columns, width))


def _register_extras() -> None:
    """Commands of other areas (Kaggle, finals, sweeps) live in kit/commands/ and register here."""
    import importlib

    for name in ("kaggle", "finals", "sweep", "competition", "task"):
        try:
            module = importlib.import_module(f"kit.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"kit.commands.{name}":
                raise
            continue
        for command in getattr(module, "COMMANDS", []):
            if command.name not in cli.commands:
                cli.add_command(command)


_register_extras()


def _old_name(command: click.Command, old: str, notice: str) -> click.Command:
    """`kit OLD` keeps working as `command` (scripts written for it go on), hidden from the help, with a notice."""

    def callback(**kwargs):
        result = click.get_current_context().invoke(command.callback, **kwargs)
        _err(notice)  # after its output, and not after an error (whose line stays the first and only one)
        return result

    return click.Command(old, params=command.params, callback=callback, hidden=True, help=f"The old name of kit {command.name}. {notice}")


# A Kaggle user reads `leaderboard` as the competition's (`kaggle competitions leaderboard`): kit's table of runs is
# `kit runs`, the competition's leaderboard `kit board`.
cli.add_command(_old_name(leaderboard_cmd, "leaderboard", "note: kit leaderboard is now kit runs (your runs, kit's table "
                                                          "leaderboard.csv); the competition's leaderboard is kit board"))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning KitError into one line plus a hint and exit code 1."""
    try:
        code = cli.main(args=argv, prog_name="kit", standalone_mode=False)
    except KitError as exc:
        if os.environ.get("KIT_DEBUG"):
            raise
        click.echo(f"{exc.label}{exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            if os.environ.get("KIT_DEBUG"):
                raise
            # Whatever spends something records its intent first (kit/runs/intent.py), so stopping here loses nothing.
            click.echo("error: interrupted", err=True)
            click.echo("hint: kit status shows anything left unfinished and the command that resolves it", err=True)
            sys.exit(130)
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ValueError as exc:
        # kernels/runtime/task.py's TaskError is a ValueError (the kernels carry no kit): one line with its fix, like a
        # KitError, wherever a command let one through. kit.task is only in sys.modules if the command loaded it.
        task = sys.modules.get("kit.task")
        if task is None or not isinstance(exc, task.TaskError) or os.environ.get("KIT_DEBUG"):
            raise
        click.echo(f"error: {exc.problem}", err=True)
        if exc.fix:
            click.echo(f"hint: {exc.fix}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
