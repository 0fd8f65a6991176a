"""Step Functions timers and the stack's schedules on the simulator's clock, so a day of waiting runs in seconds.

The Rekognition simulator runs jobs on a :class:`rekpipe.simulator.SimClock` (``clock_scale`` simulated seconds per
real second). With ``RuntimeOptions(timers_on_simulated_clock=True)`` the rest of the pipeline keeps the same pace:

* moto's interpreter waits ``TimeoutSeconds`` and ``HeartbeatSeconds`` (every Task state, including RunJob's
  ``.waitForTaskToken``) and each ``Retry`` interval for ``seconds / scale`` real seconds;
* the slot tick (the schedule that targets the slot queue) fires every ``period / scale`` real seconds, at least
  every :data:`MIN_PERIOD_SECONDS` (the stuck-task finder keeps its period: it compares wall-clock times);
* the slot dispatcher's rules read the simulated clock (heartbeat interval, LimitExceeded backoff, the lifetimes of
  finished and cancelled items), so they heartbeat a token as often, in simulated time, as in AWS.

Not scaled: ``Wait`` states (the video workflow has none), Lambda timeouts (the adapter does not enforce them),
SQS visibility timeouts and message retention, and timestamps written to tables and objects (wall clock).
These are moto 5.2.5 internals: :func:`check_compatibility` fails loudly if one moved.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

MIN_HEARTBEAT_REAL_SECONDS = 9.0
"""RunJob's HeartbeatSeconds may not shrink below this many real seconds: the dispatcher heartbeats every third
of it plus one tick, and the emulator's own latency on a loaded 2-core machine reaches a second or more per slot
message. At 3 real seconds (x300 with the default 900 s) 3 of 25 tokens timed out on such a machine, although AWS
would have kept them alive."""
MAX_SCALE = 900 / MIN_HEARTBEAT_REAL_SECONDS
"""The fastest clock with the default ``video_slot_heartbeat_seconds`` (900): x100. A deployment with a longer
heartbeat may run faster (:func:`max_scale`), which is how ``bench.backlog`` reaches waits of simulated days."""


def max_scale(heartbeat_seconds: float = 900) -> float:
    """The fastest clock the timers follow when RunJob's HeartbeatSeconds is ``heartbeat_seconds``."""
    return heartbeat_seconds / MIN_HEARTBEAT_REAL_SECONDS
MIN_PERIOD_SECONDS = 0.25
"""The fastest a scaled schedule fires: a tick also checks the holders due (a Get* each), so firing it faster
than the dispatcher can work only queues ticks."""


def scaled_period(period: float, scale: float) -> float:
    """A schedule's real period on a clock running ``scale`` times real time."""
    return max(MIN_PERIOD_SECONDS, period / scale) if scale > 0 else period


def check_compatibility() -> None:
    """Raise RuntimeError naming the moto internal that is not where this module expects it."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.timeouts.heartbeat import Heartbeat
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout

    for owner, name in ((Timeout, "_eval_body"), (Timeout, "_eval_seconds"), (Heartbeat, "_eval_body"),
                        (Heartbeat, "_eval_seconds")):
        if name not in owner.__dict__:
            raise RuntimeError(f"moto's {owner.__name__}.{name} moved: sim_timers needs updating")
    if not callable(getattr(getattr(retrier_decl, "time", None), "sleep", None)):
        raise RuntimeError("moto's retrier_decl no longer sleeps through its module's `time`: sim_timers needs updating")


def install(scale: float, heartbeat_seconds: float = 900) -> Callable[[], None]:
    """Scale moto's Step Functions timers by ``1 / scale``; returns the function that undoes it.

    ``heartbeat_seconds`` is the deployment's ``video_slot_heartbeat_seconds``, which bounds the scale."""
    fastest = max_scale(heartbeat_seconds)
    if not 0 < scale <= fastest:
        raise ValueError(f"timers on the simulated clock need 0 < clock_scale <= {fastest:g} with "
                         f"video_slot_heartbeat_seconds {heartbeat_seconds:g}, got {scale!r}: a faster clock outruns "
                         "the emulator's own latency (see sim_timers.MIN_HEARTBEAT_REAL_SECONDS); a longer heartbeat "
                         "allows a faster clock")
    check_compatibility()
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.timeouts.heartbeat import Heartbeat
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout

    originals: list[tuple[Any, str, Any]] = [(Timeout, "_eval_body", Timeout.__dict__["_eval_body"]),
                                             (Heartbeat, "_eval_body", Heartbeat.__dict__["_eval_body"]),
                                             (retrier_decl, "time", retrier_decl.time)]

    def scaled_eval_body(self: Any, env: Any) -> None:
        env.stack.append(self._eval_seconds(env=env) / scale)

    Timeout._eval_body = scaled_eval_body
    Heartbeat._eval_body = scaled_eval_body
    retrier_decl.time = SimpleNamespace(sleep=lambda seconds: time.sleep(seconds / scale))

    def undo() -> None:
        for owner, name, value in originals:
            setattr(owner, name, value)

    return undo
