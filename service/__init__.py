"""The loss service: machine-learning losses and their gradients over HTTP."""

__version__ = "0.1.0"
