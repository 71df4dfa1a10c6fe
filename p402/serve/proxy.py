"""The routing proxy: its routes follow in the next commit."""

from fastapi import APIRouter

router = APIRouter()
