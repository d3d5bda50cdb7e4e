"""Transports: request bytes in, response bytes out, one codec per wire format.

``call`` holds what every transport shares: the ``LossCall`` each one decodes into, the step from a
call to the engine's prepared call (under the request limits), and the ``Plan`` handed to admission.
``json`` is the ``/v1`` codec (JSON bodies, problem+json errors); ``oip`` is the Open Inference
Protocol v2 codec (``/v2``: JSON tensors and Triton's binary tensor extension). Nothing here imports
the web framework, so these functions can run in a thread or a process pool unchanged.
"""
