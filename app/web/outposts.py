"""HTTP routes for outposts (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
