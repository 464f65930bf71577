"""HTTP routes for demo (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
