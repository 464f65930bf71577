"""HTTP routes for auth (pages and /api/v1)."""

from fastapi import APIRouter

router = APIRouter()
