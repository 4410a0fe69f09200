"""tenuto as a backend for the Durable Task SDKs (the gRPC ``TaskHubSidecarService``).

Needs the ``grpc`` extra: ``pip install 'tenuto[grpc]'``. Run it with
``tenuto serve --grpc-port 4001`` and point ``TaskHubGrpcWorker`` /
``TaskHubGrpcClient`` at ``localhost:4001``; see ``docs/durable-task-sdks.md``.
"""

from __future__ import annotations

try:
    import durabletask.internal.orchestrator_service_pb2  # noqa: F401
    import grpc  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "tenuto's Durable Task protocol support needs the grpc extra: pip install 'tenuto[grpc]'"
    ) from exc

from .server import DEFAULT_PORT, GrpcServer

__all__ = ["DEFAULT_PORT", "GrpcServer"]
