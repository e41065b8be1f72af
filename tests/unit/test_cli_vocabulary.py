"""One vocabulary: the CLI's stage names are the job files (and the DAG task ids, checked in
tests/dags), and every command an error message tells a user to run exists."""

import re
from pathlib import Path

import pytest

from liger_jobs import cli, semantic_ids
from liger_jobs.warehouse import VERSIONED, WRITER
from liger_core.platform.model_registry import TRAINED_BY

ROOT = Path(__file__).parents[2]
SOURCES = [p for folder in ("jobs", "liger_core", "dags") for p in (ROOT / folder).rglob("*.py")]
COMMAND = re.compile(r"`((?:liger|airflow) [^`\n]+)`")
FIELD = re.compile(r"\{[^{}]*\}|<[^<>]*>")  # f-string fields and <placeholders>


# Fields that hold a stage name, and every value they can take.
STAGE_FIELDS = {"{WRITER[table]}": sorted(set(WRITER.values())), "{table}": sorted(VERSIONED)}


def hinted_commands() -> list[str]:
    found = [
        m.group(1) for path in SOURCES for m in COMMAND.finditer(path.read_text()) if "join(" not in m.group(1)
    ]  # a failed command being reported, not a hint
    expanded = set(TRAINED_BY.values())
    for command in found:
        field = next((f for f in STAGE_FIELDS if f in command), None)
        for stage in STAGE_FIELDS.get(field, [None]):
            expanded.add(FIELD.sub("2026-01-01", command.replace(field, stage) if field else command))
    return sorted(expanded)


def test_stage_names_are_the_job_files():
    jobs_with_a_stage = {p.stem for p in (ROOT / "jobs").glob("*.py") if "return stage_main(" in p.read_text()}
    assert set(cli.STAGES) == jobs_with_a_stage
    assert list(cli.STAGES)[:4] == ["ingest", "embed_items", "semantic_ids", "build_sequences"]


def test_every_command_an_error_hints_at_exists():
    commands = hinted_commands()
    assert {
        "liger semantic_ids --mode train",
        "liger recommend --ds 2026-01-01",
        "liger run",
        "airflow dags trigger liger_retrain",
    } <= set(commands)
    dags = {p.stem for p in (ROOT / "dags").glob("liger_*.py")}
    for command in commands:
        words = command.split()
        if words[0] == "airflow":
            assert words[1] in ("dags", "connections", "pools", "db"), command
            assert all(w in dags for w in words if w.startswith("liger_")), command
            continue
        try:
            cli.parser().parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"an error message hints at `{command}`, which liger does not accept")


def test_no_message_names_a_stage_without_its_command():
    vague = re.compile(r"run the \w+ stage|semantic_ids --mode (train|assign)\)")
    offenders = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in SOURCES
        for m in vague.finditer(p.read_text())
        if "help=" not in p.read_text()[max(0, m.start() - 60) : m.start()]
    ]
    assert offenders == []


def test_version_log_level_and_stage_options(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and re.fullmatch(r"liger \S+\n", capsys.readouterr().out)
    args = cli.parser().parse_args(["semantic_ids", "--mode", "train", "--log-level", "debug"])
    assert (args.mode, args.log_level) == ("train", "DEBUG")
    with pytest.raises(SystemExit):
        semantic_ids.main(["--help"])
    assert "--mode {train,assign}" in capsys.readouterr().out  # spark-submit jobs/semantic_ids.py --help
