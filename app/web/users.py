"""HTTP routes for users (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
