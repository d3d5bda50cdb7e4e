"""Grading routes for auto-graders: /v1/grade and /v1/exercises."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
