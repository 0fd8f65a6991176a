"""The one price table the cost scenario uses: us-east-1 list prices, on-demand, no free tier.

Rekognition's own prices are not here: they come from the operation catalogue
(``rekpipe_shared.operations``), which the CLI uses too.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_DATE = "2026-11-25"
"""When the table was last checked against the AWS pricing pages (Step Functions and DynamoDB
on-demand were re-read that day; the others are the long-standing list prices)."""
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    """One list price.

    Parameters
    ----------
    usd: float
        Price in US dollars for one ``unit``.
    unit: str
        What is billed.
    """

    usd: float
    unit: str


PRICES: dict[str, Price] = {
    "lambda_request": Price(0.20 / 1_000_000, "Lambda request"),
    "lambda_gb_second": Price(0.0000166667, "Lambda GB-second, x86_64 (the stack's architecture)"),
    "dynamodb_write_request_unit": Price(0.625 / 1_000_000, "DynamoDB on-demand write request unit (1 KB)"),
    "dynamodb_read_request_unit": Price(0.125 / 1_000_000, "DynamoDB on-demand read request unit (4 KB, strong)"),
    "sqs_request": Price(0.40 / 1_000_000, "SQS standard request (64 KB chunk)"),
    "sns_publish": Price(0.50 / 1_000_000, "SNS publish (delivery to SQS is free)"),
    "stepfunctions_transition": Price(0.025 / 1_000, "Step Functions Standard state transition"),
    "s3_put_request": Price(0.005 / 1_000, "S3 Standard PUT, COPY, POST or LIST request"),
    "s3_get_request": Price(0.0004 / 1_000, "S3 Standard GET, HEAD or other request"),
}
"""Every price the cost scenario multiplies by, in one place."""

__all__ = ["PRICES", "PRICES_DATE", "REGION", "Price"]
