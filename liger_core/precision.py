"""Which float type a stage computes in. ``auto`` means bfloat16 autocast where the hardware
multiplies bfloat16 natively (AMX or AVX-512 BF16 on x86 CPUs, CUDA) and float32 elsewhere,
because emulated bfloat16 is slower than float32. ``embedding.precision`` and
``recommend.precision`` both resolve through here. torch is imported on use: the embed
stage's driver checks the setting without loading it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger("liger.precision")


def native_bfloat16(device: str) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware: AMX tiles or AVX-512 BF16 dot
    products on x86 CPUs (1.9x float32 encode on a 2-core Zen 4 EPYC without AMX), CUDA."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(bool(probe and probe()) for probe in probes)


def uses_bfloat16(precision: str, device: str) -> bool:
    """Whether ``precision`` computes under bfloat16 on ``device``; silent, so a driver can
    record it without repeating the fallback line its tasks log."""
    return precision == "bfloat16" or (precision != "float32" and native_bfloat16(device))


def autocast_dtype(precision: str, device: str, setting: str) -> torch.dtype | None:
    """The dtype to autocast to, or None for plain float32; when ``auto`` falls back to
    float32 it says so once per call, naming the ``setting`` (``embedding.precision``) that forces it."""
    import torch

    if uses_bfloat16(precision, device):
        return torch.bfloat16
    if precision != "float32":
        log.info("%s: float32, %s has no native bfloat16 (set %s=bfloat16 to force it)", setting, device, setting)
    return None


def dtype_name(dtype: torch.dtype | None) -> str:
    """How a run records the precision it computed in: ``float32`` for no autocast."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")
