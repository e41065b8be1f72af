"""``liger`` command: run one stage, the whole pipeline, or show the resolved config."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Callable, Sequence

from jobs import build_sequences, embed_items, evaluate, ingest, recommend, semantic_ids, train
from jobs.common import add_common_args, settings_from, setup_logging
from jobs.spark import spark_session
from liger_core.config import Settings
from liger_core.errors import LigerError

log = logging.getLogger("liger")

STAGES: dict[str, Callable[..., dict]] = {
    "ingest": ingest.run,
    "embed": embed_items.run,
    "rqvae-train": semantic_ids.run_train,
    "assign-ids": semantic_ids.run_assign,
    "sequences": build_sequences.run,
    "train": train.run,
    "evaluate": evaluate.run,
    "recommend": recommend.run,
}
PIPELINE = ("ingest", "embed", "rqvae-train", "sequences")


def run_pipeline(settings: Settings, ds: str) -> dict[str, dict]:
    """Run every stage for ``ds`` in one Spark session; returns stats and seconds per stage."""
    spark = spark_session(settings)
    report: dict[str, dict] = {}
    for name in PIPELINE:
        started = time.perf_counter()
        stats = STAGES[name](settings, ds, spark)
        report[name] = {**stats, "seconds": round(time.perf_counter() - started, 1)}
        log.info("stage %s finished in %.1f s", name, report[name]["seconds"])
    return report


def _print_report(settings: Settings, ds: str, report: dict[str, dict]) -> None:
    print(f"\nLIGER pipeline, ds={ds}, profile={settings.profile}")
    print(f"{'stage':<12} {'seconds':>8}  figures")
    for name, stats in report.items():
        figures = ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in stats.items() if k != "seconds")
        print(f"{name:<12} {stats['seconds']:>8.1f}  {figures}")
    print(f"tables under: {settings.paths.warehouse_uri}")
    print(f"MLflow runs:  {settings.tracking_uri} (experiment '{settings.tracking.experiment}')")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in (*STAGES, "run"):
        help_text = "run the whole pipeline for one ds" if name == "run" else f"run the {name} stage"
        add_common_args(sub.add_parser(name, help=help_text))
    add_common_args(sub.add_parser("config", help="print the resolved configuration"))
    args = parser.parse_args(argv)
    setup_logging()
    try:
        settings = settings_from(args)
        if args.command == "config":
            print(json.dumps(settings.model_dump(), indent=2))
        elif args.command == "run":
            _print_report(settings, args.ds, run_pipeline(settings, args.ds))
        else:
            print(json.dumps(STAGES[args.command](settings, args.ds), indent=2, default=str))
    except LigerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
