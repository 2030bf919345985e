"""What a step running on a Dask worker says to the client, and the names it uses.

A step's host-API traffic travels as the worker transport's messages
(``hm.runtime.worker_protocol``: ``Note`` codes for one-way calls, ``Request``
codes for calls that need an answer), sent with Dask's structured events
(``Worker.log_event`` on the run's topic, ``Client.subscribe_topic``): one
batched stream per worker, so a step's messages arrive in the order it sent them.
Answers to requests come back through a ``distributed.Queue`` named after the
call; cancellation is Dask's own (the client cancels the task's future).

Every message is a list ``[token, code, *args]``, ``token`` naming one attempt of
one step (a step retried by Dask on another worker has a new attempt, same token).
"""

from __future__ import annotations

from typing import Final

#: The attempt started: ``[worker address, pid]``.
START: Final = 100
#: The attempt ended: ``[StepResult msgpack | None, error dict | None]``; nothing follows it.
END: Final = 101
#: A host-API request: ``[request id, Request code, *args]``; answered on :func:`reply_queue`.
REQUEST: Final = 102
#: ``emit_event``: ``[PluginEvent msgpack]`` (one-way: it only fails on a malformed event,
#: which the worker side already refused).
EVENT: Final = 103


def topic(run_id: str) -> str:
    """The structured-events topic of a run's step messages."""
    return f"hm-run-{run_id}"


def reply_queue(token: str) -> str:
    """The Queue a step attempt's requests are answered on."""
    return f"hm-reply-{token}"


def attempt_key(run_id: str, token: str) -> list[str]:
    """The scheduler metadata key holding the worker that started a step's first attempt."""
    return ["hm", run_id, "attempt", token]
