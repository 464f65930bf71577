"""HTTP routes for audit (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
