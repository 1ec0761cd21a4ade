"""The FastAPI service that serves the model store: predictions, model cards, comparisons."""
