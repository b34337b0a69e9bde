"""What every screen that runs workers shares."""

from __future__ import annotations

from typing import Any

from textual.worker import Worker


class ReportsWorkerFailures:
    """Mixin for a Screen that runs workers. ``Worker.StateChanged`` does not bubble: it
    reaches only the node that started the worker. This hands it to the App's one failure
    handler (``LineupApp.worker_failed``), which notifies and then calls this screen's
    ``work_failed(worker, error)`` if it has one."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        app: Any = getattr(self, "app", None)
        handler = getattr(app, "worker_failed", None)
        if handler is not None:
            handler(event)
