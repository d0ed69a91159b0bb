"""leaderboard.csv: atomic, locked writes that lose no row and no column a person added."""

from __future__ import annotations

import multiprocessing

from kit.leaderboard import sheet
from tests.helpers import CONSTANT_TEMPLATE, install_template


def _writer(path, start, count):
    for i in range(start, start + count):
        sheet.update(path, {f"run-{i}": {"status": "complete", "public_score": i / 1000}})


def test_two_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "leaderboard.csv"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, start, 40)) for start in (1, 1001)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    header, rows = sheet.read(path)
    assert len(rows) == 80 and {r["run"] for r in rows} == {f"run-{i}" for i in [*range(1, 41), *range(1001, 1041)]}
    assert [r["run"] for r in rows][:3] == ["run-1", "run-2", "run-3"]


def test_hand_added_column_and_row_survive_rewrites(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    path = workspace / "leaderboard.csv"
    header, rows = sheet.read(path)
    # A person adds a column and a note, and a row of their own.
    text = path.read_text().splitlines()
    text[0] += ",notes"
    text[1] += ",looks promising"
    text.append(",".join(["colab-1"] + [""] * (len(header) - 1)) + ",trained on Colab")
    path.write_text("\n".join(text) + "\n")
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    assert kit_cli("submit", "run-1", "--yes").exit_code == 0
    header, rows = sheet.read(path)
    assert "notes" in header
    by_run = {r["run"]: r for r in rows}
    assert by_run["run-1"]["notes"] == "looks promising" and by_run["run-1"]["public_score"] != ""
    assert by_run["colab-1"]["notes"] == "trained on Colab"
    assert set(by_run) == {"run-1", "run-2", "colab-1"}


def test_leaderboard_command_prints_table_and_json(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    assert kit_cli("push-kernel", "train", "--set", "r=64", "--wait").exit_code == 0
    table = kit_cli("leaderboard").stdout.splitlines()
    columns = table[0].split()
    assert columns[:2] == ["run", "kernel"] and {"status", "r", "val_accuracy"} <= set(columns)
    assert "learning_rate" not in columns  # only the settings that differ between runs
    assert len(table) == 4
    import json

    rows = json.loads(kit_cli("leaderboard", "--json").stdout)
    assert [r["r"] for r in rows] == [32, 64]  # numbers as numbers (--json's rule)
    bad = kit_cli("leaderboard", "--sort", "nope")
    assert bad.exit_code == 1 and "no column 'nope'" in bad.stderr


def test_settings_that_differ_between_runs_get_their_own_column(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    header, _ = sheet.read(workspace / "leaderboard.csv")
    assert "weight_decay" not in header
    assert kit_cli("push-kernel", "train", "--set", "weight_decay=0.1", "--wait").exit_code == 0
    header, rows = sheet.read(workspace / "leaderboard.csv")
    assert [r["weight_decay"] for r in rows] == ["0.01", "0.1"]
