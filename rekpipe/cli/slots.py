"""``rekpipe slots``: the video slots' one stored limit, and changing it at run time.

The limit lives in the slot header item, written only by the slot dispatcher (the single writer), so
``--limit`` does not write it: it sends a ``set_limit`` message to the slot queue, and the dispatcher
applies it in order with every other slot decision. No redeploy is needed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import click

from rekpipe.cli.console import note

if TYPE_CHECKING:
    from rekpipe.cli.stack import Clients, GlobalOptions
    from rekpipe_shared.slots import HolderItem


@click.command(short_help="Show the video slots, or change their limit with --limit N.")
@click.option("--limit", type=click.IntRange(0, 1000), default=None,
              help="Set the stored limit of concurrent Rekognition Video jobs (0 pauses new jobs).")
@click.pass_obj
def cli(options: GlobalOptions, limit: int | None) -> None:
    """Show the stored slot limit, slots in use and waiting operations; with --limit N, change the
    limit (applied by the slot dispatcher within seconds, in order with every other slot decision).
    """
    do_cli(options, limit=limit)


def do_cli(options: GlobalOptions, *, limit: int | None = None, clients: Clients | None = None) -> dict[str, Any]:
    """Print the slot header; send ``set_limit`` first when ``limit`` is given. Returns what was shown."""
    from rekpipe.cli.stack import Clients
    from rekpipe_shared.schema import SLOT_MESSAGE_GROUP
    from rekpipe_shared.slots import SetLimit, encode

    clients = clients or Clients(options)
    outputs = clients.stack_outputs()
    header = read_slots(clients, outputs.require("SemaphoreTableName"))
    if limit is not None:
        queue_url = outputs.require("SlotQueueUrl")
        note(f"Setting the video slot limit to {limit} (was {header['limit']}) through {queue_url}")
        # A UUID as the deduplication ID: two changes within SQS's 5-minute window are both applied.
        clients.client("sqs").send_message(QueueUrl=queue_url, MessageBody=encode(SetLimit(limit)),
                                           MessageGroupId=SLOT_MESSAGE_GROUP,
                                           MessageDeduplicationId=str(uuid.uuid4()))
        header = {**header, "requested_limit": limit}
    click.echo(f"limit {header['limit']}  in use {header['holders']}  waiting {header['waiters']}")
    if header.get("quota_limit"):
        click.echo(f"job quota in use {header['quota_limit']} (the account's, capped by video_slot_limit)")
    if "requested_limit" in header:
        click.echo(f"requested limit {limit}: the slot dispatcher applies it with its next message; it holds "
                   "until the account's job quota (or video_slot_limit) next changes")
    return header


def read_slots(clients: Clients, table_name: str) -> dict[str, int]:
    """The slot header: the stored limit (or the deployed default), holders and waiters."""
    from rekpipe_shared.quotas import initial_slot_limit
    from rekpipe_shared.settings import PipelineSettings
    from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore

    store = DynamoDBSlotStore(table_name, default_limit=initial_slot_limit(PipelineSettings()),
                              boto3_client=clients.client("dynamodb"))
    return store.header()


def read_holders(table_name: str, *, boto3_client: Any = None) -> dict[str, HolderItem]:
    """The video slots held now (one per running Rekognition job of ours): holder -> its item.

    Read by ``rekpipe local run`` once the run is over (it should find none) and by the tests' support.
    """
    from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore

    # The limit only fills a header never written; holders are read, not granted.
    return dict(DynamoDBSlotStore(table_name, default_limit=1, boto3_client=boto3_client).load().holders)
