"""``on_exhausted``: the policy a call runs under, as stored with its activity."""

from __future__ import annotations

import pytest

import tenuto
from tenuto._failures import pauses, policy_for
from tenuto.retry import RetryPolicy

from histories import execution_started, orchestrator_started, replay

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
