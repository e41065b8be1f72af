"""Entry points turn expected failures into one readable line and exit status 2."""

import pytest

from liger_jobs.common import exit_code
from liger_core.errors import DataError


def test_expected_failure_prints_one_error_line_and_gives_2(capsys):
    def fail() -> None:
        raise DataError("no items partition for ds=2026-01-01; run `liger ingest --ds 2026-01-01` first")

    assert exit_code(fail) == 2
    assert capsys.readouterr().err == "error: no items partition for ds=2026-01-01; run `liger ingest --ds 2026-01-01` first\n"


def test_success_gives_0_and_bugs_keep_their_traceback(capsys):
    assert exit_code(lambda: None) == 0
    assert capsys.readouterr().err == ""
    with pytest.raises(ZeroDivisionError):
        exit_code(lambda: 1 / 0)
