"""The Durable Functions HTTP management API, under ``/runtime/webhooks/durabletask/``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/runtime/webhooks/durabletask", tags=["durable functions"])
