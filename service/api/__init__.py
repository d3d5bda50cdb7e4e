"""The HTTP layer: thin routes over ``service.transport`` and ``service.engine``."""
