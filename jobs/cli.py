"""``liger`` command: run one stage, the whole pipeline, or show the resolved config.

Stage names are the DAG task ids and the job files: ``liger build_sequences`` runs
``jobs/build_sequences.py``, which is the ``build_sequences`` task of both DAGs.
"""

from __future__ import annotations

import argparse
import json
import sys
from types import ModuleType
from typing import Sequence

from liger_jobs import build_sequences, embed_items, evaluate, ingest, publish, recommend, semantic_ids, train
from liger_jobs.common import add_common_args, add_version_arg, exit_code, settings_from, setup_logging, stage_options
from liger_jobs.pipeline import run_pipeline

# In pipeline order. A module's ``add_arguments`` (if any) adds its own options.
STAGES: dict[str, ModuleType] = {
    module.__name__.rsplit(".", 1)[-1]: module
    for module in (ingest, embed_items, semantic_ids, build_sequences, train, evaluate, recommend, publish)
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="liger", description=__doc__.split("\n\n")[0])
    add_version_arg(top)
    sub = top.add_subparsers(dest="command", required=True)
    for name, module in STAGES.items():
        stage = sub.add_parser(name, help=f"run the {name} stage (jobs/{name}.py)")
        add_common_args(stage)
        if hasattr(module, "add_arguments"):
            module.add_arguments(stage)
    add_common_args(sub.add_parser("run", help="the main job: retrain + nightly DAGs via `airflow dags test`"))
    add_common_args(sub.add_parser("config", help="print the resolved configuration"))
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log_level)
    return exit_code(lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    if args.command == "config":
        print(json.dumps(settings.model_dump(), indent=2))
    elif args.command == "run":
        print(run_pipeline(settings, args.ds, args.overrides))
    else:
        stats = STAGES[args.command].run(settings, args.ds, **stage_options(args))
        print(json.dumps(stats, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
