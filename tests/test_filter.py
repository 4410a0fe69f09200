"""``tenuto.Filter``: one value for "which instances", taken by ``query``, ``count`` and the
``*_many`` methods, and made by the command line and the REST API; the keyword
arguments of those methods are the same conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import tenuto
from tenuto import Filter, Status


def test_a_filter_is_checked_when_made_and_compares_by_value():
    flt = Filter(status=["paused", Status.RUNNING], name="backup", id_prefix="")
    assert flt.status == (Status.PAUSED, Status.RUNNING)
    assert flt.id_prefix is None  # an empty prefix selects everything: no condition
    assert flt == Filter(status=("PAUSED", "RUNNING"), name="backup")
    assert flt.given and not Filter().given
    with pytest.raises(tenuto.ValidationError, match="unknown status 'asleep'"):
        Filter(status="asleep")
    with pytest.raises(tenuto.ValidationError, match="invalid orchestrator name"):
        Filter(name="two\nlines")
    with pytest.raises(tenuto.InvalidType, match="created_from must be a datetime"):
        Filter(created_from="yesterday")  # type: ignore[arg-type]
    with pytest.raises(tenuto.ValidationError, match="NUL"):
        Filter(id_prefix="a\x00")
    with pytest.raises(AttributeError):
        flt.name = "other"  # type: ignore[misc]


def test_every_filtering_method_takes_a_filter_or_its_keywords(client):
    ids = [client.start("backup", n, instance_id=f"b-{n}") for n in range(3)]
    client.start("audit", None, instance_id="a-0")
    by_name = Filter(name="backup")
    assert [s.instance_id for s in client.query(by_name).items] == ids[::-1]
    assert client.query(by_name) == client.query(name="backup")
    assert client.count(by_name)[Status.PENDING] == 3 == client.count(name="backup")[Status.PENDING]
    assert client.pause_many(Filter(id_prefix="b-"), reason="filter") == 3
    assert client.query(Filter(status="paused")).items[0].pause.reason == "filter"
    assert client.resume_many(Filter(id_prefix="b-1")) == 1
    assert client.terminate_many(Filter(status=Status.PAUSED)) == 2
    assert client.purge_many(Filter(name="backup")) == 2
    assert client.count() == client.count(Filter())
    assert {s.instance_id for s in client.query().items} == {"b-1", "a-0"}


def test_a_filter_and_filter_keywords_together_are_refused(client):
    with pytest.raises(tenuto.ValidationError, match="not both"):
        client.query(Filter(name="backup"), status="PAUSED")
    with pytest.raises(tenuto.InvalidType, match=r"filter must be a tenuto\.Filter"):
        client.pause_many({"name": "backup"})  # type: ignore[arg-type]


def test_time_conditions_select_by_creation_time(client):
    before = datetime.now(UTC) - timedelta(seconds=1)
    iid = client.start("backup", None)
    assert client.query(Filter(created_from=before)).items[0].instance_id == iid
    assert client.query(Filter(created_to=before)).items == []
    naive = before.replace(tzinfo=None)  # naive times are UTC
    assert client.query(Filter(created_from=naive)).items[0].instance_id == iid


def test_async_client_takes_a_filter(db_url):
    import asyncio

    async def main() -> tuple[int, int]:
        async with tenuto.AsyncClient(db_url) as c:
            await c.start("backup", None, instance_id="x-1")
            return await c.pause_many(Filter(name="backup")), len(
                (await c.query(Filter(status="PAUSED"))).items
            )

    assert asyncio.run(main()) == (1, 1)
