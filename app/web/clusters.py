"""HTTP routes for clusters (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
