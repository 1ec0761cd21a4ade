"""What machine a benchmark ran on: figures are only comparable within one machine and run."""

from __future__ import annotations

import os
import subprocess


def describe() -> str:
    """CPU model, core count and the vector extensions that change TensorFlow's and OpenVINO's speed."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in lscpu.splitlines() if line.startswith("Flags")), [])
    vector = sorted(flag for flag in flags if flag.startswith(("avx", "amx", "fma")))
    return f"CPU: {model}, {os.cpu_count()} CPUs; flags: {' '.join(vector) or 'none'}"
