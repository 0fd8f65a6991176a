"""Ask the slot dispatcher to admit from the video backlog now, rather than at its next tick.

Room for an execution is made in two places the dispatcher does not see: route_task adds a video to the backlog,
and start_video_workflow finishes an admitted video without an execution (every operation reused) or parks it
behind an identical video's analysis. Without a nudge the next admission waits for the minute's tick, so a backfill
of duplicates would be admitted ``limit + headroom`` videos a minute. A nudge is an admit-only tick; a batch of
them costs one admission (``superseded_ticks``), and a lost one costs only latency: the tick admits anyway.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.schema import SLOT_MESSAGE_GROUP
from rekpipe_shared.slots.messages import Tick, encode

logger = logging.getLogger(__name__)


def nudge_admission(sqs: Any, slot_queue_url: str) -> bool:
    """Send one admit-only tick to the slot queue; False (logged) if SQS refused it.

    Each nudge has its own deduplication ID: one deduplicated against an earlier nudge that the dispatcher had
    already applied would leave the new room waiting for the scheduled tick."""
    body = encode(Tick(at=f"admit-{time.time():.3f}", admit_only=True))
    try:
        sqs.send_message(QueueUrl=slot_queue_url, MessageBody=body, MessageGroupId=SLOT_MESSAGE_GROUP,
                         MessageDeduplicationId=str(uuid.uuid4()))
    except (BotoCoreError, ClientError) as error:  # the schedule is the guarantee; this is only latency
        logger.warning("Could not nudge the slot dispatcher; its next scheduled tick admits instead: %s", error)
        return False
    return True
