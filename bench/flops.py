"""Floating-point operations of a Keras model, counted from its convolution and dense layers.

A multiply-add counts as 2 FLOPs. Training costs about 3x the forward pass (forward,
gradient with respect to activations, gradient with respect to weights); elementwise
layers (BatchNorm, GELU, pooling) are left out, so the figures are a slight undercount.
"""

from __future__ import annotations

from pathlib import Path

import keras

CPU_PEAK_NOTE = "2 cores x 2 FMA units x 8 float32 lanes x 2 FLOPs x clock (AVX2 + FMA)"


def forward_flops(model: keras.Model) -> int:
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
            _, height, width, _ = layer.output.shape
            total += 2 * kernel_h * kernel_w * channels_in * channels_out * height * width
        elif isinstance(layer, keras.layers.Dense):
            inputs, outputs = layer.kernel.shape
            total += 2 * inputs * outputs
    return int(total)


def cpu_peak_gflops(cores: int = 2) -> tuple[float, float]:
    """(peak GFLOP/s, clock GHz) from /proc/cpuinfo's current clock, assuming AVX2 with two FMA units."""
    ghz = 0.0
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("cpu MHz"):
            ghz = max(ghz, float(line.split(":")[1]) / 1000)
    return cores * 2 * 8 * 2 * ghz, ghz
