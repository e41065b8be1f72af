"""Precision settings resolve to bfloat16 only where the hardware has it, unless forced."""

import pytest
import torch

from liger_core import precision
from liger_core.precision import autocast_dtype


def test_auto_precision_is_float32_without_native_bfloat16_and_says_so(monkeypatch, caplog):
    assert autocast_dtype("float32", "cpu", "embedding.precision") is None
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: True)
    assert autocast_dtype("auto", "cpu", "embedding.precision") is torch.bfloat16
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: False)
    with caplog.at_level("INFO", logger="liger.precision"):
        assert not precision.uses_bfloat16("auto", "cpu")
        assert caplog.text == ""  # a driver's check for its metrics stays silent
        assert autocast_dtype("auto", "cpu", "recommend.precision") is None
    assert caplog.text.count("recommend.precision: float32, cpu has no native bfloat16") == 1
    assert "recommend.precision=bfloat16 to force it" in caplog.text
    assert precision.uses_bfloat16("bfloat16", "cpu") and not precision.uses_bfloat16("float32", "cpu")


@pytest.mark.parametrize(("amx", "avx512_bf16", "native"), [(True, False, True), (False, True, True), (False, False, False)])
def test_cpus_with_amx_or_avx512_bf16_count_as_native_bfloat16(monkeypatch, amx, avx512_bf16, native):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert precision.native_bfloat16("cpu") is native
