"""``GET /metrics``: Prometheus metrics of this process and of the database."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .. import metrics
from ..status import Status
from .common import get_client

router = APIRouter(tags=["metrics"])
_registries: dict[int, CollectorRegistry] = {}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Metrics."}},
)
def scrape(request: Request) -> Response:
    """Metrics in the Prometheus text format."""
    client = get_client(request)
    registry = _registries.get(id(client))
    if registry is None:

        def counts() -> dict[Status, int]:
            return client.store.read(lambda r: r.count_by_status())

        registry = CollectorRegistry(auto_describe=True)
        registry.register(metrics.InstanceCounts(counts))
        registry.register(
            metrics.OutboxCounts(
                lambda: client.store.read(lambda r: r.tracking_counts()),
                lambda: client.store.read(lambda r: r.drain_state()),
            )
        )
        _registries[id(client)] = registry
    body = generate_latest(metrics.registry) + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
