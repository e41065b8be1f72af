"""``liger`` command: run one stage, the whole pipeline, or show the resolved config."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

from jobs import build_sequences, embed_items, evaluate, ingest, publish, recommend, semantic_ids, train
from jobs.common import add_common_args, exit_code, settings_from, setup_logging
from jobs.pipeline import run_pipeline

STAGES: dict[str, Callable[..., dict]] = {
    "ingest": ingest.run,
    "embed": embed_items.run,
    "rqvae-train": semantic_ids.run_train,
    "assign-ids": semantic_ids.run_assign,
    "sequences": build_sequences.run,
    "train": train.run,
    "evaluate": evaluate.run,
    "recommend": recommend.run,
    "publish": publish.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in STAGES:
        add_common_args(sub.add_parser(name, help=f"run the {name} stage"))
    add_common_args(sub.add_parser("run", help="the main job: retrain + nightly DAGs via `airflow dags test`"))
    add_common_args(sub.add_parser("config", help="print the resolved configuration"))
    args = parser.parse_args(argv)
    setup_logging()
    return exit_code(lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    if args.command == "config":
        print(json.dumps(settings.model_dump(), indent=2))
    elif args.command == "run":
        print(run_pipeline(settings, args.ds, args.overrides))
    else:
        print(json.dumps(STAGES[args.command](settings, args.ds), indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
