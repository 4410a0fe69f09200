"""Reading the tracking records in order: ``Client.events``, ``GET /api/events`` and
``tenuto events``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

import tenuto
from tenuto.outbox import Drainer


def _drain(client: tenuto.Client, **options: object) -> None:
    drainer = Drainer(client.store, **options)  # type: ignore[arg-type]
    while drainer.drain_once():
        pass
    drainer.stop()


def test_events_reads_the_numbered_records_after_a_cursor(client):
    client.start("job", None, instance_id="e-1")
    client.pause("e-1", "maintenance", by="alice")
    assert client.events().items == []  # not numbered yet: no drainer ran
    _drain(client)
    page = client.events()
    assert [(e.seq, e.event, e.instance_id) for e in page.items] == [
        (1, "started", "e-1"),
        (2, "paused", "e-1"),
    ]
    assert page.items[1].fields == {
        "reason": "maintenance",
        "by": "alice",
        "source": "client",
        "resume_at": None,
    }
    assert page.next_cursor == 2 and page.missed == 0
    assert page.items[1].to_json()["at"] == page.items[1].at.isoformat()
    assert client.events(1, limit=5).items == page.items[1:]
    assert client.events(2) == tenuto.EventsPage([], 2, 0)


def test_events_says_how_many_records_were_trimmed_before_the_cursor(client):
    client.start_many("job", [None] * 6)
    _drain(client, keep_records=2)
    page = client.events(1)
    assert [e.seq for e in page.items] == [5, 6]
    assert page.missed == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"after": -1}, "after must be"),
        ({"after": 2**63}, "after must be"),
        ({"limit": 0}, "limit must be"),
        ({"wait": 61}, "wait must be"),
    ],
)
def test_events_refuses_bad_values_saying_which(client, args, message):
    with pytest.raises(tenuto.ValidationError, match=message):
        client.events(**args)


def test_events_waits_for_the_next_record(client):
    got: list[tenuto.EventsPage] = []
    reader = threading.Thread(target=lambda: got.append(client.events(0, wait=30)))
    started = time.monotonic()
    reader.start()
    client.start("job", None, instance_id="late")
    _drain(client)
    reader.join(timeout=30)
    assert [e.instance_id for e in got[0].items] == ["late"]
    assert time.monotonic() - started < 10


def test_the_api_serves_events_with_a_long_poll(http_server, client):
    server = http_server()
    assert httpx.get(f"{server.url}/api/events").json() == {
        "items": [],
        "next_cursor": 0,
        "missed": 0,
    }
    for after in (-1, 2**63):
        bad = httpx.get(f"{server.url}/api/events", params={"after": after})
        assert bad.status_code == 422 and "after" in bad.text

    def later() -> None:
        client.start("job", None, instance_id="api-1")
        _drain(client)

    threading.Thread(target=later).start()
    body = httpx.get(f"{server.url}/api/events", params={"wait": 30}, timeout=40).json()
    assert [(i["seq"], i["event"], i["instance_id"]) for i in body["items"]] == [
        (1, "started", "api-1")
    ]
    assert body["items"][0]["name"] == "job" and body["next_cursor"] == 1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenuto", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )


def test_the_cli_prints_events_as_text_or_json_lines(client, db_url):
    client.start("job", None, instance_id="c-1")
    waiting = _cli("events", "--db", db_url)
    assert waiting.returncode == 0 and waiting.stdout == ""
    assert (
        "1 tracking record(s) not numbered yet: run tenuto serve or tenuto worker" in waiting.stderr
    )
    client.pause("c-1", "disk full", by="bob")
    _drain(client)
    text = _cli("events", "--db", db_url)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("1 ") and lines[0].endswith(" started c-1 name='job'")
    assert " paused c-1 reason='disk full' by='bob' source='client'" in lines[1]
    as_json = _cli("events", "--json", "--after", "1", "--db", db_url)
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["seq"], r["event"], r["by"]) for r in records] == [(2, "paused", "bob")]
    bad = _cli("events", "--after", "-3", "--db", db_url)
    assert bad.returncode == 2 and "--after" in bad.stderr


def test_the_cli_follows_events_until_interrupted(client, db_url):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenuto", "events", "--follow", "--json", "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client.start("job", None, instance_id="f-1")
        _drain(client)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert json.loads(line)["instance_id"] == "f-1"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
