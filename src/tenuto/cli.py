"""The ``tenuto`` command line."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from .app import App


def load_app(spec: str) -> App:
    """Import ``module:attribute`` (or ``path/to/file.py:attribute``) and return the App."""
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    if module_name.endswith(".py"):
        directory, filename = os.path.split(os.path.abspath(module_name))
        sys.path.insert(0, directory)
        module_name = filename[:-3]
    elif os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise click.BadParameter(f"{module_name}:{attr} is not a tenuto.App")
    return app


def _logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        from .tracking import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("tenuto")
    root.addHandler(handler)
    root.setLevel(level.upper())


DB_OPTION = click.option(
    "--db",
    envvar="TENUTO_DB",
    default=None,
    help="Database URL (sqlite:///path.db or postgresql://...). Default: $TENUTO_DB, "
    "else sqlite:///tenuto.db.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tenuto")
def main() -> None:
    """tenuto: durable orchestrations with first-class pause and resume."""


@main.command()
@click.argument("app_spec", metavar="MODULE:APP")
@DB_OPTION
@click.option("--concurrency", default=32, show_default=True, help="Activities running at once.")
@click.option(
    "--lease-seconds",
    default=30.0,
    show_default=True,
    help="How long a dead worker's activities stay claimed.",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def worker(
    app_spec: str,
    db: str | None,
    concurrency: int,
    lease_seconds: float,
    log_level: str,
    log_format: str,
) -> None:
    """Run a worker for the orchestrators and activities of MODULE:APP."""
    from .worker import Worker

    _logging(log_level, log_format)
    app = load_app(app_spec)
    Worker(app, db, concurrency=concurrency, lease_seconds=lease_seconds).run()
