"""int8 post-training quantization: a version's served procedure in int8, published as a new version.

The whole forward pass (scaling, test-time views, temperature) is converted to
OpenVINO and quantized by NNCF, which observes the version's calibration hold-out
(training images the network never trained on, never test images). The new version
keeps the weights, metadata and TensorFlow metrics of its source and adds the int8
model with what it scores on the full test set, lossless and as users send images,
measured beside TensorFlow in the same run, and on the corruption benchmark. The service decides from those figures
whether int8 may serve (app/backends.py); this module only measures and records.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training import augment, calibration, robustness
from training.calibrate import load_holdout
from training.core import artifacts, openvino_runtime
from training.core.forward import NOVELTY_SCOPE, forward_for, predict_in_batches
from training.core.novelty import STATISTICS_FILE, split_rows
from training.core.openvino_runtime import Predict
from training.core.preprocessing import probe_images
from training.core.records import Quantization
from training.data import Cifar10, calibration_split
from training.evaluation import split_record
from training.export import write_exports

BATCH = 500  # Images per inference call when scoring the test set.


def quantize_version(source: Path, models_dir: Path, data: Path | None = None) -> Path:
    """Publish an int8-carrying copy of the version in `source` into `models_dir`; return its folder."""
    try:
        openvino_runtime.openvino()  # First: NNCF imports openvino too.
        import nncf  # type: ignore[import-untyped]
    except ImportError as error:
        raise ValueError(f"quantizing needs openvino and nncf ({error.name} is not installed)") from error
    artifact = artifacts.load_artifact(source)
    metadata = artifact.metadata
    if metadata.quantization is not None:
        origin = metadata.quantization.source_version
        raise ValueError(f"{source} already carries an int8 model (quantized from v{origin})")
    dataset, holdout, seed = load_holdout(artifact, data)
    indices = calibration_split(len(dataset.x_train), holdout, seed)
    model = artifacts.load_keras_model(source)
    novelty = artifacts.load_novelty_statistics(source, metadata)
    forward = forward_for(model, metadata, novelty)  # With the score when the version has one.
    held_out = dataset.x_train[indices]
    converted = openvino_runtime.convert(forward)
    int8 = int8_model(converted, held_out)
    answer_int8 = _compiled(int8)
    predict_int8 = _probabilities(answer_int8)
    quantization = Quantization(
        runtime=openvino_runtime.runtime_version(),
        tool=f"nncf {nncf.__version__}",
        source_version=artifact.version,
        calibration=split_record(indices, holdout, seed, len(dataset.x_train)),
        probe_probabilities=answer_int8(probe_images()).tolist(),
        novelty_holdout_scores=_scores(answer_int8, held_out) if novelty else None,
        corruption=robustness.corruption_report(
            predict_int8, dataset.x_test, dataset.y_test, augment.seen_corruptions(artifact.metrics.hyperparameters)
        ),
        **_measure(predict_int8, _probabilities(lambda images: predict_in_batches(forward, images)), dataset),
    )
    new_metadata = metadata.model_copy(
        update={
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "description": f"{metadata.description} With an int8 model (quantized from v{artifact.version}).",
            "quantization": quantization,
        }
    )

    def extras(staging: Path) -> None:
        if novelty is not None:
            shutil.copyfile(source / STATISTICS_FILE, staging / STATISTICS_FILE)
        write_exports(model, new_metadata, staging, novelty)
        openvino_runtime.save_model(int8, staging / artifacts.INT8_DIR / artifacts.INT8_MODEL_FILE)

    plots = {name: (source / name).read_bytes() for name in artifacts.PLOT_FILES}
    return artifacts.save_version(
        models_dir, model, new_metadata, artifact.summary, artifact.metrics, plots, extras=extras
    )


def int8_model(
    converted: Any,
    images: np.ndarray,
    fast_bias_correction: bool = False,
    float_convolutions: int = 1,
    float_names: Sequence[str] = (),
) -> Any:
    """The OpenVINO model `converted` (a forward pass) quantized by NNCF, its ranges observed on `images`
    (uint8, never test images), its first `float_convolutions` convolutions and the operations named in
    `float_names` left in fp32. The arguments exist for `bench/quantization_settings.py`, which chose
    their defaults."""
    import nncf

    return nncf.quantize(
        converted,
        nncf.Dataset([images[i : i + 1] for i in range(len(images))]),
        subset_size=len(images),
        # The classifier stays fp32: quantized logits, scaled by the temperature, made whitened_convnet v5
        # underconfident (ECE 0.008 -> 0.021); in fp32 it keeps 0.007, for a layer of negligible cost.
        # So does the novelty score, and everything between it and the convolutions it reads (the first
        # layer's GELU): quantizers fitted on clean images' ranges clip the far-off values the score
        # exists to see. On model_1 the score became a constant; on whitened_convnet a quantizer inside
        # that GELU made the int8 score call 98% of grainy photos (Gaussian noise, severity 3) "none of
        # the ten classes", where fp32 called 8%; kept fp32, 9% (the cost in speed: docs/benchmarks.md).
        # And so does the layer that reads the pixels, the usual companion of the last one: on
        # whitened_convnet v14 (whose first layer is the fixed whitening filter) that cut held-out
        # disagreements with fp32 from 31 to 22 as users send images and 515 to 463 under corruption,
        # at no measurable speed; fp32 for the second too went to 19 and 111 but cost a quarter of
        # int8's speed (docs/benchmarks.md, stop 44).
        ignored_scope=nncf.IgnoredScope(
            types=["MatMul"],
            names=_feeding_the_score(converted) + convolutions(converted)[:float_convolutions] + list(float_names),
            patterns=[f"{NOVELTY_SCOPE}/.*"],
            validate=False,
        ),
        # Asymmetric activations: GELU outputs are almost all positive, so a symmetric int8 range
        # leaves half its codes unused. On whitened_convnet v7 symmetric lost 0.14 points lossless,
        # asymmetric 0.06, for ~5% of int8's speed (docs/benchmarks.md).
        preset=nncf.QuantizationPreset.MIXED,
        # Full bias correction (each layer's output mean re-fitted in turn) rather than the fast one-pass
        # estimate. Chosen on the hold-out alone (`bench/quantization_settings.py`): on whitened_convnet v14
        # it cut int8's disagreements with fp32 on held-out images as users send them by a third (31 against
        # 47 over five upload conditions) and under corruption by a tenth; it costs seconds, at quantize time.
        fast_bias_correction=fast_bias_correction,
        # Weights in 7 bits, every layer: CPUs without VNNI (AVX2, AVX-512 before Cascade Lake) add int8
        # products in pairs into 16 bits, which saturates with 8-bit weights. With the default (first layer
        # only) whitened_convnet v12's int8 answers moved by 0.023 on an AVX2 machine from those recorded
        # on the AVX-512 one, and the service refused to serve them there.
        advanced_parameters=nncf.AdvancedQuantizationParameters(overflow_fix=nncf.OverflowFix.ENABLE),
    )


def convolutions(model: Any) -> list[str]:
    """The model's convolutions, from the input onwards."""
    return [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]


def _feeding_the_score(model: Any) -> list[str]:
    """The operations between the novelty score and the nearest convolution or matrix product upstream
    of it (none for a version without a score)."""
    inside = NOVELTY_SCOPE + "/"
    pending = [
        value.get_node()
        for op in model.get_ordered_ops()
        if op.get_friendly_name().startswith(inside)
        for value in op.input_values()
        if not value.get_node().get_friendly_name().startswith(inside)
    ]
    names: set[str] = set()
    while pending:
        node = pending.pop()
        if (
            node.get_type_name() in ("Convolution", "MatMul", "Parameter", "Constant")
            or node.get_friendly_name() in names
        ):
            continue
        names.add(node.get_friendly_name())
        pending.extend(value.get_node() for value in node.input_values())
    return sorted(names)


def _compiled(model: Any) -> Predict:
    """Compiled as the service compiles it (`openvino_runtime`), run in batches of BATCH."""
    predict = openvino_runtime.compile_for_cpu(model)

    def in_batches(images: np.ndarray) -> np.ndarray:
        return np.concatenate([predict(images[i : i + BATCH]) for i in range(0, len(images), BATCH)])

    return in_batches


def _probabilities(answer: Predict) -> Predict:
    """The probabilities of a served graph's answer rows, without the novelty score."""
    return lambda images: split_rows(answer(images))[0]


def _scores(answer: Predict, images: np.ndarray) -> list[float]:
    _, scores = split_rows(answer(images))
    assert scores is not None
    return [round(float(score), 6) for score in scores]


def _measure(int8: Predict, reference: Predict, dataset: Cifar10) -> dict[str, Any]:
    """int8 against TensorFlow on the test set, lossless and under every upload condition."""
    labels = dataset.y_test.ravel()
    probabilities = int8(dataset.x_test)
    expected = reference(dataset.x_test)
    accuracy = {"lossless": _accuracy(probabilities, labels)}
    reference_accuracy = {"lossless": _accuracy(expected, labels)}
    for condition, transform in robustness.conditions().items():
        images = transform(dataset.x_test)
        accuracy[condition] = _accuracy(int8(images), labels)
        reference_accuracy[condition] = _accuracy(reference(images), labels)
    return {
        "accuracy": accuracy,
        "reference_accuracy": reference_accuracy,
        "probability_scores": calibration.scores(probabilities, labels),
        "reference_probability_scores": calibration.scores(expected, labels),
        "agreement": float((probabilities.argmax(axis=1) == expected.argmax(axis=1)).mean()),
    }


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())
