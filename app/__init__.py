"""The FastAPI service that serves the model store: predictions, model cards, comparisons."""

__version__ = "0.2.0"
