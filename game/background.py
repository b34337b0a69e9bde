"""Blocking engine calls run in daemon threads, awaited from async workers.

Textual's thread workers run in asyncio's default executor, whose threads the interpreter
joins at exit: a player who quits while the model is still loading would wait for the load
(about 12 s for GPT-2). A daemon thread is not joined: the app exits at once and the thread
dies with the process. The worker that awaits ``in_daemon_thread`` is an ordinary async
worker, so cancelling it, failing in it and ``Worker.StateChanged`` all work as usual; a
cancelled worker just stops waiting (the thread's result is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_daemon_thread(fn: Callable[..., T], *args: Any, name: str = "lineup-engine",
                           **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a new daemon thread and await its result (or its
    exception)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the awaiting worker was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting worker
            error: BaseException | None = exc
            result = None
        else:
            error = None
        # a closed loop means the app has exited: nobody is waiting for the result
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
