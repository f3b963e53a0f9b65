"""The device switch: `device: auto | cpu | cuda | cuda:N` in params.yaml (per experiment and scale).

`auto` is the first CUDA GPU when one is present, else the CPU. Every entry point that builds a model or a
buffer takes the resolved `torch.device`; worker processes receive the setting as a string and resolve it
themselves (a Ray task granted no GPU resolves `auto` to the CPU).
"""
import re
from contextlib import nullcontext

import torch

DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda if available, else cpu; 'cpu', 'cuda', 'cuda:N' as given, if this machine has it."""
    if isinstance(spec, torch.device):
        return spec
    if not re.fullmatch(DEVICE_PATTERN, str(spec)):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r}: CUDA is not available on this machine (use device: auto or cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {spec!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def autocast(device: torch.device, bf16: bool):
    """bf16 mixed precision on `device` when `bf16` is set (the conv-heavy models at paper scale), else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
