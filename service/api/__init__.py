"""The HTTP layer: thin routes over ``service.pipeline`` and ``service.engine``."""
