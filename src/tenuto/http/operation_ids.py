"""Short, readable OpenAPI operation ids (``pauseInstance``, ``listWorkers``), for the
clients that code generators make from the OpenAPI document, instead of FastAPI's
``pause_api_instances__instance_id__pause_post``."""

from __future__ import annotations

from fastapi.routing import APIRoute

#: Route function names whose camel case would not say what they act on.
_NAMES = {
    "start": "startInstance",
    "query": "listInstances",
    "status": "getInstance",
    "history": "getHistory",
    "pause": "pauseInstance",
    "resume": "resumeInstance",
    "terminate": "terminateInstance",
    "purge": "purgeInstance",
    "stats": "getStats",
    "standing_pauses": "listStandingPauses",
    "scrape": "getMetrics",
}
#: The Durable Functions routes' ids start with this (their names repeat tenuto's own).
_DURABLE_PATHS = "/runtime/"


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def operation_id(route: APIRoute) -> str:
    """The operation id of ``route`` (one given in the route's decorator wins)."""
    if route.path.startswith(_DURABLE_PATHS):
        name = camel(route.name)
        return "durable" + name[:1].upper() + name[1:]
    return _NAMES.get(route.name) or camel(route.name)
