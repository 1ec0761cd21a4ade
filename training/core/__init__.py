"""The neutral core that training and the service both import.

Nothing here trains a network or speaks HTTP: the class list, pixel scaling, the
compiled forward pass, and the model store format. `training/` builds on it to
produce versions; `app/` builds on it to serve them.
"""
