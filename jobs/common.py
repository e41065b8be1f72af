"""What every stage's entry point shares: arguments, config, ds, and readable failures."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, Sequence

from liger_core.config import Settings, load_settings
from liger_core.errors import LigerError

log = logging.getLogger("liger")


def valid_ds(value: str) -> str:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"ds must be YYYY-MM-DD, got '{value}'") from None
    return value


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ds", type=valid_ds, default=today(), help="logical date the stage writes (default: today, UTC)")
    parser.add_argument(
        "--profile", default=None, help="config profile name in configs/ or a YAML path (default: $LIGER_PROFILE or cpu)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set source.kcore=5 (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", choices=LOG_LEVELS, type=str.upper, help="log verbosity (default: INFO)")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
COMMON_ARGS = frozenset({"ds", "profile", "overrides", "log_level", "command"})


def package_version() -> str:
    try:
        return version("liger-pipeline")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "unknown"


def add_version_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")


def stage_options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's own options (``--mode`` of semantic_ids), as keyword arguments of its run."""
    return {k: v for k, v in vars(args).items() if k not in COMMON_ARGS}


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(args.profile, args.overrides)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3", "filelock", "alembic", "sentence_transformers", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def exit_code(call: Callable[[], object]) -> int:
    """Run an entry point's body: 0 when it returns; an expected failure (LigerError: bad
    input, config or state) prints one ``error:`` line to stderr and gives 2, where a user
    would otherwise read a traceback. Anything else is a bug and propagates."""
    try:
        call()
    except LigerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def stage_main(
    stage: str,
    run: Callable[..., dict],
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """spark-submit entry of one stage (see ``exit_code`` for the exit status); the stage's own
    options (``add_arguments``) show in ``--help`` and reach ``run`` as keyword arguments."""
    parser = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"the {stage} stage")
    add_common_args(parser)
    add_version_arg(parser)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)

    def timed() -> None:
        started = time.perf_counter()
        log.info("%s started for ds=%s", stage, args.ds)
        stats = run(settings_from(args), args.ds, **stage_options(args))
        log.info("%s done in %.0f s: %s", stage, time.perf_counter() - started, stats)

    return exit_code(timed)
