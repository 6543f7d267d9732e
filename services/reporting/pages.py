"""The dashboard pages (placeholder until the dashboard lands)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["dashboard"])
