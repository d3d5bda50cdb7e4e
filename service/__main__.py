"""``python -m service``: serve the loss service with uvicorn, configured by the settings (service.server)."""

from .server import main

main()
