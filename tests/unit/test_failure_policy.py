"""``on_exhausted``: the policy a call runs under, as stored with its activity."""

from __future__ import annotations

import pytest

import tenuto
from tenuto import history as h
from tenuto._failures import pauses, policy_for
from tenuto.retry import RetryPolicy
from tenuto.status import Failure

from histories import (
    T0,
    execution_started,
    message,
    orchestrator_started,
    replay,
    resumed,
    sub_created,
)

PAUSING = tenuto.App(on_exhausted="pause")


@PAUSING.activity
def plain(x: int) -> int:
    return x


@PAUSING.activity(retry=RetryPolicy(max_attempts=5, on_exhausted="raise"))
def raising(x: int) -> int:
    return x


@PAUSING.orchestrator
def calls(ctx, _):
    yield ctx.when_all([ctx.call_activity(plain, 1), ctx.call_activity(raising, 2)])


def test_the_policy_is_stored_only_when_set():
    assert "on_exhausted" not in RetryPolicy().to_json()
    policy = RetryPolicy(max_attempts=2, on_exhausted="pause")
    assert policy.to_json()["on_exhausted"] == "pause"
    assert RetryPolicy.from_json(policy.to_json()) == policy
    assert RetryPolicy.from_json(RetryPolicy().to_json()).on_exhausted is None


def test_the_app_default_applies_where_the_call_does_not_say():
    lenient = tenuto.App()
    assert policy_for(lenient, None) is None
    assert policy_for(PAUSING, None) == RetryPolicy(max_attempts=1, on_exhausted="pause")
    three = RetryPolicy(max_attempts=3)
    assert policy_for(PAUSING, three) == RetryPolicy(max_attempts=3, on_exhausted="pause")
    says = RetryPolicy(on_exhausted="raise")
    assert policy_for(PAUSING, says) is says


def test_a_call_is_scheduled_with_the_policy_it_runs_under():
    r = replay(PAUSING, "calls", orchestrator_started(), execution_started("calls"))
    plain_call, raising_call = r.take_actions()
    assert plain_call.retry == RetryPolicy(max_attempts=1, on_exhausted="pause")
    assert raising_call.retry is not None and raising_call.retry.on_exhausted == "raise"
    assert pauses('{"max_attempts": 1, "on_exhausted": "pause"}')
    assert not pauses(None) and not pauses('{"max_attempts": 1}')


@pytest.mark.parametrize("bad", ["ignore", "fail", ""])
def test_a_policy_that_does_not_exist_is_refused(bad):
    with pytest.raises(ValueError, match="on_exhausted must be 'raise' or 'pause'"):
        RetryPolicy(on_exhausted=bad)
    with pytest.raises(ValueError, match=r"App\(on_exhausted=...\) must be 'raise' or 'pause'"):
        tenuto.App(on_exhausted=bad)


@PAUSING.orchestrator
def parent(ctx, _):
    return (yield ctx.call_sub_orchestrator("calls", None, instance_id="kid"))


def _kid_failed(kind: str = "builtins.ValueError") -> h.Message:
    failure = Failure(kind, "it broke").to_json()
    return message(9, h.Event(h.SUB_FAILED, T0, {"task_id": 0, "failure": failure}))


def _suspended_by_the_kid() -> h.Event:
    failed = {"task_id": 0, "sub_orchestration": "calls", "instance_id": "kid"}
    data = {"reason": "r", "by": "tenuto", "source": "failure", "failed": failed}
    return h.Event(h.EXECUTION_SUSPENDED, T0, data)


def test_a_child_failure_is_held_until_a_resume_delivers_it():
    started = (orchestrator_started(), execution_started("parent"), sub_created(0, "calls", "kid"))
    r = replay(PAUSING, "parent", *started)
    held = r.failure_to_hold([_kid_failed()])
    assert held is not None and (held["sub_orchestration"], held["instance_id"]) == ("calls", "kid")
    assert held["failure"]["message"] == "it broke"
    # A terminated child's failure is delivered: terminating it said what to do.
    assert r.failure_to_hold([_kid_failed("tenuto.Terminated")]) is None

    plain = replay(PAUSING, "parent", *started, _suspended_by_the_kid(), resumed())
    assert plain.failure_to_hold([_kid_failed()]) is not None  # resumed: held again
    delivered = resumed()
    delivered.data["deliver_failure"] = True
    r = replay(PAUSING, "parent", *started, _suspended_by_the_kid(), delivered)
    assert r.failure_to_hold([_kid_failed()]) is None
