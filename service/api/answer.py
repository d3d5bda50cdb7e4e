"""The one place a plan's ``Answer`` becomes an HTTP response (every computing route renders it here)."""

from __future__ import annotations

from fastapi.responses import Response

from ..transport.call import Answer


def respond(answer: Answer) -> Response:
    return Response(answer.body, media_type=answer.media_type, headers=dict(answer.headers))
