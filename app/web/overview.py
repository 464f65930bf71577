"""HTTP routes for overview (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
