"""CIFAR-10 training: data, architectures, the training loop and the model store format."""
