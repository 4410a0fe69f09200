"""The dashboard's schedules and limits view, in real headless Chromium (see
test_dashboard.py for the browser, the server and what every page must not do)."""

from __future__ import annotations

from datetime import timedelta

from test_dashboard import backend, browser, dashboard, expect  # noqa: F401


def test_schedules_and_limits_view(dashboard):  # noqa: F811
    dash = dashboard()
    c = dash.client
    c.create_schedule("hourly-backup", "backup", "vol-1", every=timedelta(hours=1))
    c.create_schedule("nightly-audit", "audit", 2, cron="0 2 * * *", timezone="Europe/Paris")
    c.pause_schedule("nightly-audit", "release freeze", by="ops")
    c.limit_activity("fail", max_concurrent=2, per_second=5, reason="vendor quota", by="ops")
    c.limit_orchestrator("migrate", 3, by="ops")

    dash.open("#/schedules")
    hourly = dash.page.locator('#schedule-rows tr[data-schedule="hourly-backup"]')
    expect(hourly).to_contain_text("every 1 h")
    expect(hourly).to_contain_text("none yet")
    nightly = dash.page.locator('#schedule-rows tr[data-schedule="nightly-audit"]')
    expect(nightly).to_contain_text("cron 0 2 * * * (Europe/Paris)")
    expect(nightly).to_contain_text("release freeze")
    expect(nightly).to_contain_text("by ops")
    quota = dash.page.locator('#limit-rows tr[data-limit="activity:fail"]')
    expect(quota).to_contain_text("at most 2 at once, 5 starts/s")
    expect(quota).to_contain_text("vendor quota")
    expect(dash.page.locator('#limit-rows tr[data-limit="orchestrator:migrate"]')).to_contain_text(
        "at most 3 running"
    )
    dash.screenshot("dashboard-schedules.png")

    # Pause with a reason, from the dialog; the pause is a standing pause.
    hourly.get_by_role("button", name="Pause…").click()
    dash.submit("Pause")
    expect(dash.modal().locator(".form-error")).to_contain_text("Give a reason")
    dash.modal().locator("input[name=reason]").fill("storage migration")
    dash.submit("Pause")
    expect(dash.notice()).to_have_text("Paused schedule hourly-backup.")
    expect(hourly).to_contain_text("storage migration")
    assert c.schedule("hourly-backup").paused

    # Run now starts a run, listed with its status; Resume ends the pause.
    hourly.get_by_role("button", name="Run now").click()
    expect(dash.notice()).to_contain_text("Started hourly-backup@")
    expect(hourly.locator(".run")).to_have_count(1)
    hourly.get_by_role("button", name="Resume").click()
    expect(dash.notice()).to_have_text("Resumed schedule hourly-backup.")
    expect(hourly.get_by_role("button", name="Pause…")).to_be_visible()
    assert not c.schedule("hourly-backup").paused

    # Remove a limit.
    quota.get_by_role("button", name="Remove").click()
    expect(dash.notice()).to_have_text("Removed the limit of activity fail.")
    expect(dash.page.locator("#limit-rows tr")).to_have_count(1)
    assert [lim.name for lim in c.limits()] == ["migrate"]

    # The paused schedule is in the instance list's banner of standing pauses too.
    dash.open("#/")
    banner = dash.page.locator('#standing [data-kind=schedule][data-name="nightly-audit"]')
    expect(banner).to_contain_text("is paused: no new runs")
    banner.get_by_role("button", name="Resume").click()
    expect(dash.notice()).to_have_text("Resumed schedule nightly-audit.")
    assert not c.schedule("nightly-audit").paused
