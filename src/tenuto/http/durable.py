"""The Durable Functions HTTP management API, under ``/runtime/webhooks/durabletask/``.

These routes follow Azure Durable Functions' documented HTTP API (and, where the
documentation and the extension disagree, what the extension's ``HttpApiHandler`` does),
so that existing Durable Functions clients and scripts, including the
``azure-functions-durable`` Python client pointed at this server, work unchanged.

==========  ==============================================  ==============================
Method      Route (relative to the prefix)                  Status codes
==========  ==============================================  ==============================
``POST``    ``orchestrators/{functionName}``                202 check-status payload
                                                            (200 with ``timeout``), 400,
                                                            409
``POST``    ``orchestrators/{functionName}/{instanceId}``   the same, with a chosen id
``GET``     ``instances/{instanceId}``                      200 finished, 202 live, 404
                                                            (500 for Failed with
                                                            ``returnInternalServerErrorOnFailure``)
``GET``     ``instances``                                   200; paging by the
                                                            ``x-ms-continuation-token``
                                                            header
``DELETE``  ``instances/{instanceId}``                      200 ``{"instancesDeleted": 1}``,
                                                            404, 412 still live
``DELETE``  ``instances``                                   200 ``{"instancesDeleted": n}``,
                                                            400, 404 none matched
``POST``    ``instances/{instanceId}/raiseEvent/{name}``    202, 400, 404, 410 finished
``POST``    ``instances/{instanceId}/terminate?reason=``    202, 404, 410 finished
``POST``    ``instances/{instanceId}/suspend?reason=``      202, 404, 410 finished
``POST``    ``instances/{instanceId}/resume?reason=``       202, 404, 410 finished
==========  ==============================================  ==============================

Runtime statuses use Durable Functions' names: ``Pending``, ``Running``, ``Suspended``
(tenuto's ``PAUSED``: suspend is tenuto's pause, resume its resume), ``Completed``,
``Failed`` and ``Terminated``. ``runtimeStatus`` filters take those names (any case,
comma-separated or repeated) and tenuto's own (``Paused``); ``ContinuedAsNew`` and
``Canceled`` are accepted and match nothing, since no tenuto instance is ever in either.
The query parameters ``taskHub`` and ``connection`` are accepted and ignored (one tenuto
database is one task hub). When the server has tokens, these routes accept one as a
bearer token, as ``?code=`` or as the ``x-functions-key`` header, as Durable Functions
clients send their function key.

Where tenuto differs from Durable Functions, and why:

* Starting an instance with an id that is taken is ``409 Conflict`` (what Durable
  Functions answers when its ``overridableExistingInstanceStates`` forbid replacing an
  instance). tenuto never silently replaces an instance: purge the old one first.
* A JSON string body whose text is itself JSON (``"{\\"a\\": 1}"``, ``"42"``) is decoded
  once more, for start inputs and event data alike. The ``azure-functions-durable``
  Python client encodes payloads twice, and Durable Functions' Python orchestrators decode
  a string input as JSON text (``get_input``); tenuto does that decoding here so that a
  tenuto orchestrator receives the value the client passed (and status reads show that
  value as ``input``, where Durable Functions would show the client's JSON text). A string
  that is not JSON text (``"hello"``) stays a string; to pass a string that is JSON text,
  encode it twice.
* ``GET instances/{id}`` answers 200 for Failed and Terminated instances (as the
  extension does; the reference page's "400 for failed or terminated" is not what the
  extension returns). ``output`` holds ``"type: message"`` for a failed instance and the
  termination message for a terminated one.
* Timestamps keep microseconds (Durable Functions truncates ``createdTime`` and
  ``lastUpdatedTime`` to whole seconds), so that time filters built from them are precise.
* Bad query values (an unknown status name, a date that is not ISO 8601, a ``top`` that is
  not a positive integer, an unknown continuation token) are ``400`` with tenuto's JSON
  error form ``{"error": code, "message": text}``; Durable Functions ignores them. Every
  other error also uses that form; the start route's 400 adds ``Message`` and
  ``ExceptionMessage``, which Durable Functions clients read.
* ``rewind`` and ``restart`` are not implemented, so the check-status payload has no
  ``rewindPostUri`` or ``restartPostUri``. Purging never deletes a live instance, whatever
  ``runtimeStatus`` says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from .. import _json, errors
from .. import history as h
from ..client import MAX_PAGE, Client
from ..errors import InvalidJSON
from ..filters import Filter
from ..status import HistoryEvent, InstanceStatus, Status
from .common import ApiError, actor, get_client
from .models import Error

PREFIX = "/runtime/webhooks/durabletask"

#: tenuto's statuses under their Durable Functions names.
DF_STATUS: dict[Status, str] = {
    Status.PENDING: "Pending",
    Status.RUNNING: "Running",
    Status.PAUSED: "Suspended",
    Status.COMPLETED: "Completed",
    Status.FAILED: "Failed",
    Status.TERMINATED: "Terminated",
}

#: The names a ``runtimeStatus`` filter accepts (lower case) and what each matches.
STATUS_FILTERS: dict[str, tuple[Status, ...]] = {
    **{name.lower(): (status,) for status, name in DF_STATUS.items()},
    "paused": (Status.PAUSED,),
    "continuedasnew": (),
    "canceled": (),
    "cancelled": (),
}

#: How long ``POST orchestrators/...?timeout=`` may wait, in seconds.
MAX_WAIT = 60.0
DEFAULT_TOP = 100
#: Query parameters of a request that the management URLs carry over, as Durable
#: Functions' do.
CARRIED_PARAMS = ("taskHub", "connection", "code")
CONTINUATION_HEADER = "x-ms-continuation-token"


def _hub_params(
    task_hub: Annotated[
        str | None,
        Query(alias="taskHub", description="Accepted and ignored: a tenuto database is one hub."),
    ] = None,
    connection: Annotated[
        str | None, Query(description="Accepted and ignored (the server has one database).")
    ] = None,
    code: Annotated[
        str | None,
        Query(description="Accepted and ignored: authenticate with a bearer token instead."),
    ] = None,
) -> None:
    """Durable Functions' common query parameters, declared so that the OpenAPI document
    shows them; tenuto ignores their values."""


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Malformed request or invalid values."},
    401: {"model": Error, "description": "Missing or wrong bearer token."},
    413: {"model": Error, "description": "Request body too large."},
    503: {"model": Error, "description": "The database is unreachable or locked; retry."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "Unknown instance."}
}
_GONE: dict[int | str, dict[str, Any]] = {
    410: {"model": Error, "description": "The instance has finished."}
}
_ACCEPTED: dict[int | str, dict[str, Any]] = {202: {"description": "Accepted; no content."}}

router = APIRouter(
    prefix=PREFIX,
    tags=["durable functions"],
    dependencies=[Depends(_hub_params)],
    responses=_ERROR_RESPONSES,
)
ClientDep = Annotated[Client, Depends(get_client)]
InstanceId = Annotated[str, Path(alias="instanceId", description="The instance id.")]
Reason = Annotated[str | None, Query(description="Why (recorded in the history).")]


async def _raw_body(request: Request) -> bytes:
    """The request body, read on the event loop so that the routes can stay synchronous."""
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


# -- errors -------------------------------------------------------------------------------


@contextmanager
def _df_errors() -> Iterator[None]:
    """Map tenuto's errors to the status codes Durable Functions uses."""
    try:
        yield
    except errors.InstanceNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except errors.InstanceFinished as exc:
        raise ApiError(410, "gone", str(exc)) from None
    except errors.InstanceNotFinished as exc:
        raise ApiError(412, "instance_not_finished", str(exc)) from None
    except errors.InstanceExists as exc:
        raise ApiError(409, "instance_exists", str(exc)) from None
    except errors.UnknownOrchestrator as exc:
        raise ApiError(400, "unknown_orchestrator", str(exc)) from None
    except errors.InvalidCursor as exc:
        raise ApiError(400, "invalid_continuation_token", str(exc)) from None
    except errors.ValidationError as exc:  # other exceptions are bugs: a 500
        raise ApiError(400, "invalid", str(exc)) from None


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid", message)


# -- parsing ------------------------------------------------------------------------------


def parse_payload(raw: bytes, what: str) -> Any:
    """Decode a request body as a start input or event data, with tenuto's value rules
    (:mod:`tenuto._json`).

    An empty body is ``None``. A JSON string whose text is itself JSON is decoded once
    more (the ``azure-functions-durable`` client encodes payloads twice, and Durable
    Functions' Python orchestrators decode string inputs as JSON text).
    """
    if not raw.strip():
        return None
    try:
        value = _json.parse(raw, what)
    except json.JSONDecodeError:
        raise ApiError(400, "malformed", f"{what} is not valid JSON") from None
    except InvalidJSON as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    if isinstance(value, str) and value.strip():
        try:
            return _json.parse(value, what)
        except json.JSONDecodeError:
            return value
        except InvalidJSON as exc:
            if value.strip() in _CONSTANTS:
                return value  # "NaN" is a string here, not a number
            raise ApiError(400, "invalid_json", str(exc)) from None
    return value


#: JSON-like constants that a string payload may hold and that stay strings.
_CONSTANTS = frozenset({"NaN", "Infinity", "-Infinity"})


def parse_bool(value: str | None, name: str, default: bool) -> bool:
    """A ``true``/``false`` query value (any case; also ``1``/``0``)."""
    if value is None or not value.strip():
        return default
    text = value.strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _invalid(f"{name} must be true or false, not {value[:40]!r}")


_SPACE_OFFSET = re.compile(r" (\d{2}(:?\d{2})?)$")


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 timestamp from the query string; naive times are UTC."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    # An unencoded "+01:00" arrives as " 01:00"; Python's strftime may not pad years < 1000.
    text = _SPACE_OFFSET.sub(r"+\1", text)
    year, dash, rest = text.partition("-")
    if dash and year.isdigit() and len(year) < 4:
        text = f"{year.zfill(4)}-{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(
            f"{name} must be an ISO 8601 timestamp such as 2024-05-01T12:00:00Z, not {value[:40]!r}"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_statuses(values: list[str] | None) -> tuple[Status, ...] | None:
    """The statuses a ``runtimeStatus`` filter matches; ``None`` when there is no filter.

    An empty tuple means the filter matches nothing (``ContinuedAsNew``, ``Canceled``).
    """
    names = [n.strip() for v in values or () for n in v.split(",") if n.strip()]
    if not names:
        return None
    found: list[Status] = []
    for name in names:
        matches = STATUS_FILTERS.get(name.lower())
        if matches is None:
            known = ", ".join([*DF_STATUS.values(), "ContinuedAsNew", "Canceled"])
            raise _invalid(f"unknown runtimeStatus {name[:40]!r}; use one of {known}")
        found.extend(s for s in matches if s not in found)
    return tuple(found)


def parse_top(value: str | None) -> int:
    """The page size: a positive integer, at most tenuto's page limit."""
    if value is None or not value.strip():
        return DEFAULT_TOP
    try:
        top = int(value.strip())
    except ValueError:
        raise _invalid(f"top must be a positive integer, not {value[:40]!r}") from None
    if top < 1:
        raise _invalid(f"top must be a positive integer, not {top}")
    return min(top, MAX_PAGE)


def parse_seconds(value: str | None, name: str) -> float | None:
    """A number of seconds from the query string (``timeout``)."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        raise _invalid(f"{name} must be a number of seconds, not {value[:40]!r}") from None
    if not 0 <= seconds < float("inf"):
        raise _invalid(f"{name} must be a non-negative number of seconds")
    return min(seconds, MAX_WAIT)


# -- payloads -----------------------------------------------------------------------------


def iso(value: datetime) -> str:
    """A UTC timestamp in ISO 8601 extended notation with a ``Z`` suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return iso(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


def _output(st: InstanceStatus) -> Any:
    if st.runtime_status is Status.FAILED and st.failure is not None:
        return str(st.failure)
    if st.runtime_status is Status.TERMINATED and st.failure is not None:
        return st.failure.message
    return st.output


def status_payload(
    st: InstanceStatus,
    *,
    show_input: bool = True,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An instance as Durable Functions shows it (``historyEvents`` only if given)."""
    body: dict[str, Any] = {
        "name": st.name,
        "instanceId": st.instance_id,
        "runtimeStatus": DF_STATUS[st.runtime_status],
        "input": st.input if show_input else None,
        "customStatus": st.custom_status,
        "output": _output(st),
        "createdTime": iso(st.created_at),
        "lastUpdatedTime": iso(st.updated_at),
    }
    if history is not None:
        body["historyEvents"] = history
    return body


def _failure_fields(failure: Any) -> dict[str, Any]:
    if not isinstance(failure, dict):
        return {}
    kind, message = failure.get("type"), failure.get("message")
    return {"Reason": f"{kind}: {message}", "Details": failure.get("traceback")}


_RESULTS = {h.TASK_COMPLETED: h.TASK_SCHEDULED, h.TASK_FAILED: h.TASK_SCHEDULED}
_RESULTS.update({h.SUB_COMPLETED: h.SUB_CREATED, h.SUB_FAILED: h.SUB_CREATED})


def history_events(events: list[HistoryEvent], show_output: bool) -> list[dict[str, Any]]:
    """A history in the shape of Durable Functions' ``historyEvents``.

    As there, ``OrchestratorStarted`` events are left out, a task's scheduling event is
    folded into its completion (which gains ``FunctionName`` and ``ScheduledTime``),
    inputs are not shown, and results only with ``show_output``.
    """
    out: list[dict[str, Any] | None] = []
    scheduled: dict[tuple[str, Any], int] = {}
    for event in events:
        kind, data = event.type, event.data
        if kind == h.ORCHESTRATOR_STARTED:
            continue
        item: dict[str, Any] = {"EventType": kind, "Timestamp": iso(event.timestamp)}
        if kind == h.EXECUTION_STARTED:
            item["FunctionName"] = data.get("name")
        elif kind in (h.TASK_SCHEDULED, h.SUB_CREATED):
            item["Name"] = data.get("name")
            if kind == h.SUB_CREATED:
                item["InstanceId"] = data.get("instance_id")
            scheduled[(kind, data.get("task_id"))] = len(out)
        elif kind in _RESULTS:
            index = scheduled.pop((_RESULTS[kind], data.get("task_id")), None)
            if index is not None:
                origin = out[index]
                out[index] = None
                assert origin is not None
                item["FunctionName"] = origin["Name"]
                item["ScheduledTime"] = origin["Timestamp"]
                if "InstanceId" in origin:
                    item["InstanceId"] = origin["InstanceId"]
            if kind in (h.TASK_COMPLETED, h.SUB_COMPLETED):
                if show_output:
                    item["Result"] = data.get("result")
            else:
                item.update(_failure_fields(data.get("failure")))
        elif kind in (h.TIMER_CREATED, h.TIMER_FIRED):
            item["FireAt"] = _iso_text(data.get("fire_at"))
        elif kind == h.EVENT_RAISED:
            item["Name"] = data.get("name")
        elif kind in (h.EXECUTION_SUSPENDED, h.EXECUTION_RESUMED):
            item["Reason"] = data.get("reason")
        elif kind == h.EXECUTION_COMPLETED:
            failed = data.get("status") == Status.FAILED.value
            item["OrchestrationStatus"] = "Failed" if failed else "Completed"
            failure = data.get("failure")
            if failed and isinstance(failure, dict):
                item["FailureDetails"] = {
                    "ErrorType": failure.get("type"),
                    "ErrorMessage": failure.get("message"),
                    "StackTrace": failure.get("traceback"),
                }
            if show_output:
                item["Result"] = (
                    _failure_fields(failure).get("Reason") if failed else data.get("result")
                )
        elif kind == h.CONTINUED_AS_NEW:
            item["EventType"] = "ContinueAsNew"
            if show_output:
                item["Result"] = data.get("input")
        out.append(item)
    return [item for item in out if item is not None]


def management_urls(request: Request, instance_id: str) -> dict[str, str]:
    """The check-status payload: absolute management URLs for ``instance_id``, built from
    the request's base URL and carrying its ``taskHub``, ``connection`` and ``code``."""
    base = f"{str(request.base_url).rstrip('/')}{PREFIX}/instances/{quote(instance_id, safe='')}"
    carried = [(k, v) for k in CARRIED_PARAMS if (v := request.query_params.get(k)) is not None]
    query = urlencode(carried)
    suffix = f"?{query}" if query else ""
    with_reason = f"?reason={{text}}{'&' + query if query else ''}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{base}{suffix}",
        "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}{suffix}",
        "terminatePostUri": f"{base}/terminate{with_reason}",
        "purgeHistoryDeleteUri": f"{base}{suffix}",
        "suspendPostUri": f"{base}/suspend{with_reason}",
        "resumePostUri": f"{base}/resume{with_reason}",
    }


def this_url(request: Request) -> str:
    """The URL of ``request``, percent-encoded: its path holds an instance id, which may
    hold any character but ``/ \\ # ?`` (a header must be ASCII)."""
    url = request.url
    return str(url.replace(path=quote(url.path, safe="/")))


def _check_status_response(request: Request, instance_id: str) -> JSONResponse:
    links = management_urls(request, instance_id)
    return JSONResponse(
        links,
        status_code=202,
        headers={"Location": links["statusQueryGetUri"], "Retry-After": "10"},
    )


def _status_response(
    request: Request,
    st: InstanceStatus,
    *,
    show_input: bool = True,
    history: list[dict[str, Any]] | None = None,
    fail_with_500: bool = False,
) -> JSONResponse:
    body = status_payload(st, show_input=show_input, history=history)
    if not st.is_terminal:
        return JSONResponse(
            body, status_code=202, headers={"Location": this_url(request), "Retry-After": "5"}
        )
    code = 500 if fail_with_500 and st.runtime_status is Status.FAILED else 200
    return JSONResponse(body, status_code=code)


# -- routes -------------------------------------------------------------------------------

_START_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "With timeout: the instance finished in time (its output)."},
    202: {"description": "Started: the check-status payload; Location is its status URL."},
    409: {"model": Error, "description": "The instance id is taken."},
}


FunctionName = Annotated[str, Path(alias="functionName", description="The orchestrator to start.")]
Timeout = Annotated[
    str | None, Query(description=f"Wait up to this many seconds (max {MAX_WAIT:g}).")
]
PollingInterval = Annotated[
    str | None, Query(alias="pollingInterval", description="Accepted and ignored.")
]
Version = Annotated[str | None, Query(description="Accepted and ignored.")]


@router.post("/orchestrators/{functionName}", status_code=202, responses=_START_RESPONSES)
def start(
    request: Request,
    client: ClientDep,
    raw: RawBody,
    function_name: FunctionName,
    timeout: Timeout = None,
    polling_interval: PollingInterval = None,
    version: Version = None,
) -> Response:
    """Start an orchestration with a new random id and the JSON body as its input.

    Answers 202 with the check-status payload and a ``Location`` header. With
    ``timeout``, waits that long for the instance to finish first: a completed instance
    answers 200 with its output, a failed or terminated one 200 with its status.
    """
    return _start(request, client, raw, function_name, None, timeout)


@router.post(
    "/orchestrators/{functionName}/{instanceId}", status_code=202, responses=_START_RESPONSES
)
def start_with_id(
    request: Request,
    client: ClientDep,
    raw: RawBody,
    function_name: FunctionName,
    instance_id: Annotated[
        str, Path(alias="instanceId", description="The id to give the new instance.")
    ],
    timeout: Timeout = None,
    polling_interval: PollingInterval = None,
    version: Version = None,
) -> Response:
    """Start an orchestration with the given instance id (409 if it is taken); otherwise
    the same as starting without one."""
    return _start(request, client, raw, function_name, instance_id, timeout)


def _start(
    request: Request,
    client: Client,
    raw: bytes,
    function_name: str,
    instance_id: str | None,
    timeout: str | None,
) -> Response:
    try:
        wait = parse_seconds(timeout, "timeout")
        data = parse_payload(raw, "the orchestrator input")
        with _df_errors():
            iid = client.start(function_name, data, instance_id=instance_id)
    except ApiError as exc:
        if exc.status != 400:
            raise
        # Durable Functions clients read the message of a 400 from ExceptionMessage.
        body = {"error": exc.code, "message": exc.message}
        body.update(Message=exc.message, ExceptionMessage=exc.message)
        return JSONResponse(body, status_code=400)
    if wait is not None:
        try:
            st = client.wait(iid, timeout=wait)
        except errors.WaitTimeout:
            return _check_status_response(request, iid)
        if st.runtime_status is Status.COMPLETED:
            return JSONResponse(st.output, status_code=200)
        return JSONResponse(status_payload(st), status_code=200)
    return _check_status_response(request, iid)


@router.get(
    "/instances/{instanceId}",
    responses={
        200: {"description": "Finished (Completed, Failed or Terminated)."},
        202: {"description": "Pending, Running or Suspended; Location is this URL."},
        500: {"description": "Failed, with returnInternalServerErrorOnFailure=true."},
        **_NOT_FOUND,
    },
)
def get_status(
    request: Request,
    client: ClientDep,
    instance_id: InstanceId,
    show_history: Annotated[
        str | None, Query(alias="showHistory", description="Include historyEvents.")
    ] = None,
    show_history_output: Annotated[
        str | None,
        Query(alias="showHistoryOutput", description="Include results in historyEvents."),
    ] = None,
    show_input: Annotated[
        str | None, Query(alias="showInput", description="false: leave the input out.")
    ] = None,
    return_500: Annotated[
        str | None,
        Query(
            alias="returnInternalServerErrorOnFailure",
            description="true: answer 500 instead of 200 for a Failed instance.",
        ),
    ] = None,
) -> Response:
    """The status of one instance."""
    with_history = parse_bool(show_history, "showHistory", False)
    with_output = parse_bool(show_history_output, "showHistoryOutput", False)
    with_input = parse_bool(show_input, "showInput", True)
    fail_with_500 = parse_bool(return_500, "returnInternalServerErrorOnFailure", False)
    with _df_errors():
        st = client.status(instance_id)
        events = history_events(client.history(instance_id), with_output) if with_history else None
    return _status_response(
        request, st, show_input=with_input, history=events, fail_with_500=fail_with_500
    )


TimeFrom = Annotated[
    str | None, Query(alias="createdTimeFrom", description="Created at or after (ISO 8601).")
]
TimeTo = Annotated[
    str | None, Query(alias="createdTimeTo", description="Created at or before (ISO 8601).")
]
StatusFilter = Annotated[
    list[str] | None,
    Query(alias="runtimeStatus", description="Comma-separated runtime status names."),
]


@router.get(
    "/instances",
    responses={200: {"description": "A page of statuses; more if x-ms-continuation-token."}},
)
@router.get("/instances/", include_in_schema=False)
def list_instances(
    client: ClientDep,
    created_from: TimeFrom = None,
    created_to: TimeTo = None,
    runtime_status: StatusFilter = None,
    instance_id_prefix: Annotated[
        str | None, Query(alias="instanceIdPrefix", description="Ids starting with this.")
    ] = None,
    show_input: Annotated[
        str | None, Query(alias="showInput", description="false: leave inputs out.")
    ] = None,
    top: Annotated[
        str | None, Query(description=f"Page size (default {DEFAULT_TOP}, max {MAX_PAGE}).")
    ] = None,
    continuation: Annotated[
        str | None,
        Header(alias=CONTINUATION_HEADER, description="The token of the previous page."),
    ] = None,
) -> Response:
    """Instances matching every given filter, newest first, one page at a time.

    When there are more, the response carries an ``x-ms-continuation-token`` header;
    send it back as a request header to get the next page.
    """
    statuses = parse_statuses(runtime_status)
    since = parse_time(created_from, "createdTimeFrom")
    until = parse_time(created_to, "createdTimeTo")
    with_input = parse_bool(show_input, "showInput", True)
    limit = parse_top(top)
    if statuses == ():
        return JSONResponse([])
    with _df_errors():
        flt = Filter(
            status=statuses,
            created_from=since,
            created_to=until,
            id_prefix=instance_id_prefix or None,
        )
        page = client.query(flt, limit=limit, cursor=(continuation or "").strip() or None)
    body = [status_payload(st, show_input=with_input) for st in page.items]
    headers = {CONTINUATION_HEADER: page.next_cursor} if page.next_cursor else None
    return JSONResponse(body, headers=headers)


@router.delete(
    "/instances/{instanceId}",
    responses={
        200: {"description": '{"instancesDeleted": 1}'},
        **_NOT_FOUND,
        412: {"model": Error, "description": "The instance is still live."},
    },
)
def purge(client: ClientDep, instance_id: InstanceId) -> Response:
    """Delete a finished instance and its history."""
    with _df_errors():
        client.purge(instance_id)
    return JSONResponse({"instancesDeleted": 1})


@router.delete(
    "/instances",
    responses={
        200: {"description": '{"instancesDeleted": n}'},
        404: {"model": Error, "description": "No instance matched."},
    },
)
@router.delete("/instances/", include_in_schema=False)
def purge_many(
    client: ClientDep,
    created_from: TimeFrom = None,
    created_to: TimeTo = None,
    runtime_status: StatusFilter = None,
) -> Response:
    """Delete every finished instance created in the window (``createdTimeFrom`` is
    required; ``createdTimeTo`` defaults to now) with one of the given statuses."""
    since = parse_time(created_from, "createdTimeFrom")
    if since is None:
        raise _invalid("Please provide value for 'createdTimeFrom' parameter.")
    until = parse_time(created_to, "createdTimeTo") or datetime.now(UTC)
    statuses = parse_statuses(runtime_status)
    count = 0
    if statuses != ():
        with _df_errors():
            count = client.purge_many(Filter(status=statuses, created_from=since, created_to=until))
    if count == 0:
        raise ApiError(404, "not_found", "no finished instance matched the filter")
    return JSONResponse({"instancesDeleted": count})


@router.post(
    "/instances/{instanceId}/raiseEvent/{eventName}",
    status_code=202,
    responses={**_ACCEPTED, **_NOT_FOUND, **_GONE},
)
def raise_event(
    request: Request,
    client: ClientDep,
    raw: RawBody,
    instance_id: InstanceId,
    event_name: Annotated[str, Path(alias="eventName", description="The event's name.")],
) -> Response:
    """Send an event (the JSON body is its data); a suspended instance gets it after it
    is resumed."""
    with _df_errors():
        st = client.status(instance_id)
    if st.is_terminal:
        raise ApiError(
            410,
            "gone",
            f"instance {instance_id!r} has finished ({DF_STATUS[st.runtime_status]}) and "
            "cannot receive events",
        )
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(400, "malformed", "Only application/json request content is supported")
    if not raw.strip():
        raise ApiError(400, "malformed", "the event data is missing: send a JSON value")
    data = parse_payload(raw, "the event data")
    with _df_errors():
        client.raise_event(instance_id, event_name, data)
    return Response(status_code=202)


@router.post(
    "/instances/{instanceId}/terminate",
    status_code=202,
    responses={**_ACCEPTED, **_NOT_FOUND, **_GONE},
)
def terminate(
    request: Request, client: ClientDep, instance_id: InstanceId, reason: Reason = None
) -> Response:
    """End a live instance (a suspended one too) as Terminated."""
    with _df_errors():
        client.terminate(instance_id, reason, by=actor(request))
    return Response(status_code=202)


@router.post(
    "/instances/{instanceId}/suspend",
    status_code=202,
    responses={**_ACCEPTED, **_NOT_FOUND, **_GONE},
)
def suspend(
    request: Request, client: ClientDep, instance_id: InstanceId, reason: Reason = None
) -> Response:
    """Suspend (pause) a live instance; it reads ``Suspended`` until resumed. Suspending
    a suspended instance succeeds and changes nothing."""
    with _df_errors():
        client.pause(instance_id, reason, by=actor(request))
    return Response(status_code=202)


@router.post(
    "/instances/{instanceId}/resume",
    status_code=202,
    responses={**_ACCEPTED, **_NOT_FOUND, **_GONE},
)
def resume(
    request: Request, client: ClientDep, instance_id: InstanceId, reason: Reason = None
) -> Response:
    """Resume a suspended instance where it stopped. Resuming a running instance
    succeeds and changes nothing."""
    with _df_errors():
        client.resume(instance_id, reason, by=actor(request))
    return Response(status_code=202)


@router.post(
    "/instances/{instanceId}/rewind",
    status_code=202,
    responses={**_ACCEPTED, **_NOT_FOUND, **_GONE},
)
def rewind(
    request: Request, client: ClientDep, instance_id: InstanceId, reason: Reason = None
) -> Response:
    """Rewind a Failed instance: it runs again from before its failure (410 if it
    ended otherwise, 412 if it is still running)."""
    with _df_errors():
        client.rewind(instance_id, reason, by=actor(request))
    return Response(status_code=202)


@router.post(
    "/instances/{instanceId}/restart",
    status_code=202,
    responses={**_NOT_FOUND, 412: {"model": Error, "description": "The instance is live."}},
)
def restart(
    request: Request,
    client: ClientDep,
    instance_id: InstanceId,
    restart_with_new_id: Annotated[
        str | None,
        Query(
            alias="restartWithNewInstanceId",
            description="true: start the new run under a new id; false (the default): "
            "replace the finished instance.",
        ),
    ] = None,
) -> JSONResponse:
    """Start a finished instance again with its original input; answers with the new
    run's management URLs, as a start does."""
    new_id = parse_bool(restart_with_new_id, "restartWithNewInstanceId", False)
    with _df_errors():
        started = client.restart(instance_id, new_instance_id=new_id, by=actor(request))
    return _check_status_response(request, started)
