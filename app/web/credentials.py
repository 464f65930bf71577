"""HTTP routes for credentials (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
