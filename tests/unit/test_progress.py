"""Without a terminal (Airflow, ``make run``), loops log a line at a steady interval."""

import logging

from liger_core.progress import Progress


def test_without_a_terminal_each_interval_logs_done_rate_eta_and_the_last_known_fields(caplog):
    with caplog.at_level(logging.INFO, logger="liger.progress"):
        meter = Progress("train", 100, "step", every_seconds=0.0)
        meter.update(10, loss=0.5, latest_validation=None)
        meter.update(20, loss=None, latest_validation=0.0312)
        meter.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("train 10/100 steps, ") and "steps/s, ETA " in lines[0]
    assert lines[0].endswith(", loss 0.5000, latest validation -")
    assert lines[1].startswith("train 20/100 steps, ") and lines[1].endswith(", loss 0.5000, latest validation 0.0312")


def test_lines_wait_for_the_interval_and_a_disabled_meter_stays_silent(caplog):
    with caplog.at_level(logging.INFO, logger="liger.progress"):
        steady = Progress("embed", 1000, "text", every_seconds=3600.0)
        for done in range(0, 1001, 100):
            steady.update(done)
        Progress("train", 10, "step", enabled=False, every_seconds=0.0).update(5)
    assert caplog.records == []
