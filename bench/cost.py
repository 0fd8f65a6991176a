"""Scenario 3, per-object cost: what the pipeline itself spends per image and per video operation.

Counts come from a burst or backlog run (requests at moto's botocore hook, invocations from the
Lambda adapter, transitions from execution histories) and are priced with `bench.prices`.
Rekognition is left out of the pipeline's total and shown beside it, from the catalogue's prices.
"""

from __future__ import annotations

from typing import Any

from bench.prices import PRICES

PER_OBJECT_EXCLUDED_FUNCTIONS = ("reconcile_slots",)
"""Scheduled, so a cost per hour rather than per object."""
_WRITE_UNITS = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1}
_S3_PUT_TIER = ("PutObject", "CopyObject", "ListObjects", "ListObjectsV2", "CreateMultipartUpload",
                "UploadPart", "CompleteMultipartUpload")
_S3_GET_TIER = ("GetObject", "HeadObject")
_SQS_BILLED = ("SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility",
               "ChangeMessageVisibilityBatch")


def usage(result: dict[str, Any]) -> dict[str, float]:
    """Billable quantities of one run, summed over the run."""
    requests = result["requests"]["requests"]
    items = result["requests"]["dynamodb_items"]

    def req(name: str) -> int:
        return int(requests.get(name, 0))

    lambdas = {k: v for k, v in result["lambda"].items() if k not in PER_OBJECT_EXCLUDED_FUNCTIONS}
    write_units = sum(req(f"dynamodb.{op}") * units for op, units in _WRITE_UNITS.items())
    write_units += 2 * int(items.get("dynamodb.TransactWriteItems", 0)) + int(items.get("dynamodb.BatchWriteItem", 0))
    read_units = 0.0
    for op in ("GetItem", "Query"):
        strong = req(f"dynamodb.{op}#consistent")
        read_units += strong + 0.5 * (req(f"dynamodb.{op}") - strong)
    read_units += int(items.get("dynamodb.BatchGetItem", 0)) + 2 * int(items.get("dynamodb.TransactGetItems", 0))
    sqs_requests = sum(req(f"sqs.{op}") for op in _SQS_BILLED)
    sqs_requests += sum(int(v) for v in result.get("sqs_batches", {}).values())  # one non-empty receive per batch
    return {
        "lambda_requests": sum(v["invocations"] for v in lambdas.values()),
        "lambda_gb_seconds": sum(v["gb_seconds"] for v in lambdas.values()),
        "dynamodb_requests": sum(v for k, v in requests.items() if k.startswith("dynamodb.") and "#" not in k),
        "dynamodb_write_units": write_units,
        "dynamodb_read_units": read_units,
        "sqs_requests": sqs_requests,
        "sqs_messages_sent": req("sqs.SendMessage") + int(result["requests"]["sqs_entries"].get("sqs.SendMessageBatch", 0)),
        "sns_publishes": req("sns.Publish"),
        "stepfunctions_transitions": int(result.get("transitions_total", 0)),
        "s3_put_requests": sum(req(f"s3.{op}") for op in _S3_PUT_TIER),
        "s3_get_requests": sum(req(f"s3.{op}") for op in _S3_GET_TIER),
    }


_PRICED = (
    ("lambda_requests", "lambda_request"),
    ("lambda_gb_seconds", "lambda_gb_second"),
    ("dynamodb_write_units", "dynamodb_write_request_unit"),
    ("dynamodb_read_units", "dynamodb_read_request_unit"),
    ("sqs_requests", "sqs_request"),
    ("sns_publishes", "sns_publish"),
    ("stepfunctions_transitions", "stepfunctions_transition"),
    ("s3_put_requests", "s3_put_request"),
    ("s3_get_requests", "s3_get_request"),
)


def per_object(result: dict[str, Any], per: int, unit: str, rekognition_usd: float) -> dict[str, Any]:
    """Usage and dollars per object (``per`` objects in the run), with Rekognition beside the total."""
    totals = usage(result)
    rows = []
    pipeline_usd = 0.0
    for quantity, price_name in _PRICED:
        count = totals[quantity] / per
        usd = count * PRICES[price_name].usd
        pipeline_usd += usd
        rows.append({"item": quantity, "per_object": count, "usd_per_object": usd})
    extra = {k: totals[k] / per for k in ("dynamodb_requests", "sqs_messages_sent")}
    return {
        "unit": unit,
        "objects": per,
        "rows": rows,
        "counts": extra,
        "lambda_by_function": {k: v["invocations"] / per for k, v in sorted(result["lambda"].items())},
        "pipeline_usd": pipeline_usd,
        "rekognition_usd": rekognition_usd,
        "pipeline_share_of_total": pipeline_usd / (pipeline_usd + rekognition_usd) if rekognition_usd else None,
        "per_million_usd": pipeline_usd * 1_000_000,
    }


def image_cost(result: dict[str, Any]) -> dict[str, Any]:
    """Per image, from a burst run (DetectLabels only)."""
    from rekpipe_shared.operations import CATALOGUE

    return per_object(result, int(result["objects"]), "image (DetectLabels)", CATALOGUE["labels"].image_price)


def video_operation_cost(result: dict[str, Any]) -> dict[str, Any]:
    """Per video operation, from a backlog run; Rekognition priced per minute of the sample's length."""
    from rekpipe_shared.operations import CATALOGUE

    spec = result["spec"]
    minutes = spec["video_seconds"] / 60
    prices = [CATALOGUE[name].video_price_per_minute * minutes for name in spec["operations"]]
    return per_object(result, int(result["operations"]),
                      f"video operation ({spec['video_seconds']} s video)", sum(prices) / len(prices))
