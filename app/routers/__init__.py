"""One router per resource: predictions, the model store, health, the web page."""
