"""HTTP routes for fleet (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
