"""Benchmark results name the CPU they ran on, since the same machine type comes as
different CPU generations with different timings."""

from __future__ import annotations

from benchmarks.machine import cpu_name

ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse4_2 avx fma avx2 sha_ni

processor\t: 1
model name\t: something else
flags\t\t: avx512f avx512_bf16
"""


def test_the_first_processor_names_the_model_and_its_vector_extensions():
    assert cpu_name(ZEN3) == "AMD EPYC (family 25 model 1; avx2)"


def test_extensions_are_listed_in_a_fixed_order_and_their_absence_is_said():
    zen4 = ZEN3.replace("avx2 sha_ni", "avx512_bf16 avx2 avx512f").replace("model\t\t: 1", "model\t\t: 17")
    assert cpu_name(zen4) == "AMD EPYC (family 25 model 17; avx2, avx512f, avx512_bf16)"
    assert cpu_name("model name\t: Old\nflags\t\t: sse2\n").endswith("(family ? model ?; no AVX2)")
