"""The ten CIFAR-10 classes, in label order. Every other module imports this list."""

CLASS_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

NUM_CLASSES = len(CLASS_NAMES)
