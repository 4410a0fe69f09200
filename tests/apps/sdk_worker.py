"""A Durable Task SDK worker process for the sidecar tests: ``python sdk_worker.py
ADDRESS MARKER``. Its activity ``slow_step`` writes MARKER and then hangs, so that the
test can kill the process while it holds the activity."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from durabletask import task
from durabletask.worker import TaskHubGrpcWorker


def kill_flow(ctx: task.OrchestrationContext, value: Any) -> Any:
    result = yield ctx.call_activity("slow_step", input=value)
    return result


def main() -> None:
    address, marker = sys.argv[1], Path(sys.argv[2])

    def slow_step(ctx: task.ActivityContext, value: Any) -> Any:
        marker.write_text(str(ctx.task_id))
        time.sleep(600)
        return "never"

    worker = TaskHubGrpcWorker(host_address=address)
    worker.add_orchestrator(kill_flow)
    worker.add_activity(slow_step)
    worker.use_work_item_filters()
    worker.start()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
