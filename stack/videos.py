"""Videos: one Step Functions execution per admitted object, the slot dispatcher that runs each
Rekognition job within the account's job quota, and completion notices from Rekognition through an
encrypted SNS topic.

The state machine's ARN is built from its fixed name instead of referenced: the functions it
invokes need that ARN (environment, SendTask* grants) and it needs theirs, which CloudFormation
could not order otherwise.

Over 400 lines: the functions, the state machine, its substitutions and the rules on its executions reference
each other's ARNs and grants, so they are built in one construct.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from rekpipe_shared.schema import (
    ASYNC_OUTPUT_PREFIX,
    IN_FLIGHT_INDEX,
    OUTPUT_BUCKET_ENV,
    PIPELINE_SETTINGS_ENV,
    RATE_LIMIT_TABLE_NAME_ENV,
    RESULT_INDEX_TABLE_NAME_ENV,
    SLOT_MESSAGE_GROUP,
    SLOT_QUEUE_URL_ENV,
    TASK_TABLE_NAME_ENV,
    VIDEO_QUEUE_URL_ENV,
    VIDEO_STATE_MACHINE_ARN_ENV,
)
from stack.ingestion import READ_OBJECT_ACTIONS
from stack.nag import acknowledge, acknowledge_objects, acknowledge_resource, wildcard_resource
from stack.paths import VIDEO_ASL_PATH
from stack.permissions import (
    REKOGNITION_STAR_REASON,
    SERVICE_QUOTAS_STAR_REASON,
    object_statement,
    rekognition_statements,
    service_quotas_statement,
)
from stack.queues import WorkQueue, failure_destination_queue
from stack.slots import SlotDispatch
from stack.storage import DELETE_ITEM, PUT_ITEM, QUERY, READ_ITEM, UPDATE_ITEM, grant_table

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from aws_cdk import aws_sqs as sqs

    from stack.functions import FunctionFactory, PipelineFunction
    from stack.storage import Storage

START_WORKFLOW_TIMEOUT = cdk.Duration.seconds(30)
JOB_COMPLETED_TIMEOUT = cdk.Duration.seconds(30)
JOB_COMPLETED_MAX_RECEIVE_COUNT = 5
STATE_MACHINE_NAME_SUFFIX = "VideoAnalysis"
EVENT_RETRY_ATTEMPTS = 4
EVENT_MAX_AGE = cdk.Duration.hours(2)
ENDED_WITHOUT_OUTCOME = ("FAILED", "TIMED_OUT", "ABORTED")
"""Executions that end this way never ran RecordOutcome: record_ended_execution records their task FAILED."""
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def asl_substitution_names(text: str) -> set[str]:
    """Every ``${Name}`` an ASL definition expects from DefinitionSubstitutions."""
    return set(SUBSTITUTION.findall(text))


class RekognitionNotifications(Construct):
    """The SNS topic Rekognition announces finished jobs on, and the role it publishes with.

    The topic is encrypted with a customer-managed key (the AWS-managed SNS key cannot be
    granted to Rekognition's role), refuses non-TLS requests, and only the Rekognition role may
    publish to it. The role trusts ``rekognition.amazonaws.com`` for this account only and may do
    nothing but publish to this topic with this key.

    Attributes
    ----------
    key: kms.Key
    topic: sns.Topic
    rekognition_role: iam.Role
    """

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        self.rekognition_role = iam.Role(
            self,
            "RekognitionRole",
            assumed_by=iam.ServicePrincipal(
                "rekognition.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="Assumed by Rekognition Video to publish job completion notices to the pipeline's topic",
        )
        self.key = kms.Key(self, "TopicKey", enable_key_rotation=True,
                           description="Encrypts the Rekognition job completion topic")
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowRekognitionRoleToPublishEncrypted",
                principals=[self.rekognition_role],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True,
                               display_name="Rekognition Video job completions")
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowOnlyRekognitionRoleToPublish",
                principals=[iam.ArnPrincipal(self.rekognition_role.role_arn)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyPublishByAnyoneElse",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": self.rekognition_role.role_arn}},
            )
        )
        self.rekognition_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        self.rekognition_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])
        )


class VideoAnalysis(Construct):
    """The video path: workflow starter, state machine and its functions, notices and clean-up.

    Parameters
    ----------
    factory: FunctionFactory
    storage: Storage
    queue: sqs.IQueue
        The video work queue, consumed by ``start_video_workflow``.
    operations: Sequence[str]
        Video analyses (settings ``video_operations``), for the Rekognition grants.
    face_collection_id: str | None
    slot_wait_seconds, job_wait_seconds, heartbeat_seconds, get_retry_seconds, map_max_concurrency: int
        Values substituted into the ASL.
    log_retention: logs.RetentionDays
    log_key: kms.IKey
    definition_path: Path
        The ASL file.

    Attributes
    ----------
    functions: dict[str, PipelineFunction]
    state_machine: sfn.StateMachine
    state_machine_arn: str
        Built from the name; equal to ``state_machine.state_machine_arn``.
    executions_arn: str
        ARN pattern of this state machine's executions.
    substitutions: dict[str, str]
    notifications: RekognitionNotifications
    job_completed_queue, job_completed_dlq, events_dlq: sqs.Queue
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        factory: FunctionFactory,
        storage: Storage,
        queue: sqs.IQueue,
        operations: Sequence[str],
        face_collection_id: str | None,
        slot_wait_seconds: int,
        job_wait_seconds: int,
        heartbeat_seconds: int,
        map_max_concurrency: int,
        get_retry_seconds: int = 5,
        log_retention: logs.RetentionDays,
        log_key: kms.IKey,
        definition_path: Path = VIDEO_ASL_PATH,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        self.state_machine_name = f"{stack.stack_name}-{STATE_MACHINE_NAME_SUFFIX}"
        self.state_machine_arn = stack.format_arn(service="states", resource="stateMachine",
                                                  resource_name=self.state_machine_name,
                                                  arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        self.executions_arn = stack.format_arn(service="states", resource="execution",
                                          resource_name=f"{self.state_machine_name}:*",
                                          arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        machine_ref = sfn.StateMachine.from_state_machine_arn(self, "StateMachineRef", self.state_machine_arn)
        self.notifications = RekognitionNotifications(self, "Notifications")

        def create(id_: str, name: str, description: str, *, environment: tuple[str, ...], timeout: int = 30,
                   memory_size: int = 256) -> PipelineFunction:
            return factory.create(self, id_, name=name, description=description, environment=environment,
                                  timeout=cdk.Duration.seconds(timeout), memory_size=memory_size)

        # --- functions -----------------------------------------------------------------------------
        start_workflow = factory.create(self, "StartVideoWorkflow", name="start_video_workflow",
                                        timeout=START_WORKFLOW_TIMEOUT,
                                        description="Starts one video state machine execution per admitted video task",
                                        environment=(TASK_TABLE_NAME_ENV, VIDEO_STATE_MACHINE_ARN_ENV, VIDEO_QUEUE_URL_ENV,
                                                     OUTPUT_BUCKET_ENV, RESULT_INDEX_TABLE_NAME_ENV, SLOT_QUEUE_URL_ENV,
                                                     PIPELINE_SETTINGS_ENV))
        collect_results = create("CollectResults", "collect_results",
                                 "Pages a finished job's results to S3, resumable", timeout=900, memory_size=1024,
                                 environment=(OUTPUT_BUCKET_ENV, VIDEO_QUEUE_URL_ENV, RESULT_INDEX_TABLE_NAME_ENV,
                                              RATE_LIMIT_TABLE_NAME_ENV, PIPELINE_SETTINGS_ENV))
        record_outcome = create("RecordOutcome", "record_outcome", "Records a video task's outcome and manifest",
                                timeout=60, environment=(TASK_TABLE_NAME_ENV, OUTPUT_BUCKET_ENV, RESULT_INDEX_TABLE_NAME_ENV,
                                                         VIDEO_QUEUE_URL_ENV, PIPELINE_SETTINGS_ENV))
        job_completed = factory.create(self, "JobCompleted", name="job_completed", timeout=JOB_COMPLETED_TIMEOUT,
                                       description="Tells the slot dispatcher a job ended when Rekognition's notice arrives",
                                       environment=(SLOT_QUEUE_URL_ENV, RATE_LIMIT_TABLE_NAME_ENV, PIPELINE_SETTINGS_ENV))
        record_ended = create("RecordEndedExecution", "record_ended_execution",
                              "Records the task of a failed, timed-out or aborted video execution as FAILED",
                              environment=(TASK_TABLE_NAME_ENV,))
        self.functions: dict[str, PipelineFunction] = {
            f.name: f for f in (start_workflow, collect_results, record_outcome, job_completed, record_ended)
        }

        # --- the slots' single writer (issue 11): the RunJob state sends its want to this queue ----
        self.events_dlq = failure_destination_queue(self, "EventsDlq",
                                                    used_by="the EventBridge rules and schedule of the slots")
        self.slots = SlotDispatch(self, "Slots", factory=factory, state_machine_arn=self.state_machine_arn,
                                  events_dlq=self.events_dlq)

        # --- state machine -------------------------------------------------------------------------
        log_group = logs.LogGroup(
            self, "StateMachineLogGroup",
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",  # keeps Logs' resource policy small
            retention=log_retention, encryption_key=log_key,
            removal_policy=cdk.RemovalPolicy.DESTROY,  # named: a retained one would block a re-deploy
        )
        invoked = {
            "LambdaCollectResultsFunction": collect_results,
            "LambdaRecordOutcomeFunction": record_outcome,
        }
        self.substitutions: dict[str, str] = {
            **{key: function.function.function_arn for key, function in invoked.items()},
            "SlotQueueUrl": self.slots.queue.queue_url,
            "SlotMessageGroup": SLOT_MESSAGE_GROUP,
            "SlotHeartbeatSeconds": str(heartbeat_seconds),
            # The backstop: the longest wait for a slot, plus the longest job, plus one heartbeat period
            # (TimeoutSeconds must exceed HeartbeatSeconds).
            "RunJobTimeoutSeconds": str(slot_wait_seconds + job_wait_seconds + heartbeat_seconds),
            "GetRetrySeconds": str(get_retry_seconds),
            "MapMaxConcurrency": str(map_max_concurrency),
        }
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition_path.read_text()),
            definition_substitutions=self.substitutions,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            comment="Analyses one stored video with Rekognition Video, each job in a slot of the slot dispatcher",
        )
        # RunJob's want: SendMessage only (grant_send_messages would add GetQueueUrl/GetQueueAttributes).
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.slots.queue.queue_arn]))
        for function in invoked.values():
            function.function.grant_invoke(self.state_machine)
            acknowledge_resource(
                self.state_machine.role, f"{function.function.function_arn}:*",
                f"grant_invoke adds '<{function.name} ARN>:*' so the state machine may also invoke that one "
                "function's versions and aliases; no other function is reachable.",
            )
        acknowledge(
            self.state_machine.role, wildcard_resource("*"),
            "Step Functions logging uses CloudWatch Logs vended-log delivery (logs:CreateLogDelivery, "
            "GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, "
            "DescribeResourcePolicies, DescribeLogGroups) and X-Ray tracing (xray:PutTraceSegments, "
            "PutTelemetryRecords, GetSamplingRules, GetSamplingTargets); none of these support resource-level "
            "permissions, so AWS requires Resource '*'.",
        )

        # --- start_video_workflow: the video queue's consumer --------------------------------------
        start_workflow.function.add_event_source(sources.SqsEventSource(queue, report_batch_item_failures=True))
        grant_table(start_workflow.function, storage.task_table, READ_ITEM + UPDATE_ITEM)
        machine_ref.grant_start_execution(start_workflow.function)
        self._grant_reuse(storage, queue, start_workflow, collect_results, record_outcome)

        # --- an execution that never recorded its outcome ---------------------------------------
        grant_table(record_ended.function, storage.task_table, READ_ITEM + UPDATE_ITEM)

        # --- Get* callers --------------------------------------------------------------------------
        for function in (collect_results, job_completed):
            # Get* is paced at the account's quotas, read from Service Quotas (rekpipe_shared.quotas).
            function.add_to_policy(*rekognition_statements(self, operations, gets=True), service_quotas_statement())
            reasons = [REKOGNITION_STAR_REASON] if operations else []
            acknowledge(function.role, wildcard_resource("*"), " ".join([*reasons, SERVICE_QUOTAS_STAR_REASON]))
            # Every Get* caller takes its place under the shared per-second quota (one atomic ADD per call).
            grant_table(function.function, storage.rate_limit_table, UPDATE_ITEM)

        # --- results and outcome -------------------------------------------------------------------
        output_arn = storage.output_bucket.bucket_arn
        async_prefix = f"{ASYNC_OUTPUT_PREFIX}/"
        collect_results.add_to_policy(
            object_statement(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], output_arn, async_prefix),
            # Without ListBucket a missing resume-state object is a 403, not the NoSuchKey the code expects.
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[output_arn]),
        )
        acknowledge_objects(collect_results.role, output_arn,
                            "Video results are paged to async/<bucket>/<key>/<version>/run-<n>/<API>/, keys known "
                            "only at run time; read/write/delete of its own resume state and pages, only under async/.",
                            async_prefix)
        record_outcome.add_to_policy(object_statement(["s3:PutObject"], output_arn, async_prefix))
        acknowledge_objects(record_outcome.role, output_arn,
                            "Each video run's manifest (async/<bucket>/<key>/<version>/run-<n>/manifest.json) and the "
                            "key's latest.json pointer, keys known only at run time; PutObject only, only under async/.", async_prefix)
        grant_table(record_outcome.function, storage.task_table, READ_ITEM + UPDATE_ITEM)
        # latest.json moves only to the key's current version: record_outcome asks S3 which one that is (HEAD).
        for bucket in storage.content_buckets:
            record_outcome.add_to_policy(object_statement(["s3:GetObject"], bucket.bucket_arn))
            acknowledge_objects(record_outcome.role, bucket.bucket_arn,
                                "record_outcome reads the metadata (HeadObject, authorised as s3:GetObject) of the "
                                "video it recorded, to point latest.json at the key's current version only; the "
                                "keys are whatever is uploaded or backfilled. GetObject only, no version access.")

        # --- Rekognition's notices -> SQS -> job_completed ----------------------------------------
        notices = WorkQueue(self, "JobCompletedQueue", consumer_timeout=JOB_COMPLETED_TIMEOUT,
                            max_receive_count=JOB_COMPLETED_MAX_RECEIVE_COUNT)
        self.job_completed_queue, self.job_completed_dlq = notices.queue, notices.dlq
        # raw_message_delivery off: the SNS envelope (with its MessageId and signature) reaches the handler.
        self.notifications.topic.add_subscription(
            subscriptions.SqsSubscription(self.job_completed_queue, raw_message_delivery=False)
        )
        job_completed.function.add_event_source(
            sources.SqsEventSource(self.job_completed_queue, report_batch_item_failures=True)
        )

        # --- an execution that ended without RecordOutcome: its task is recorded FAILED ----------
        events.Rule(
            self,
            "RecordEndedExecutionRule",
            description="Records the task of a video execution that failed, timed out or was aborted as FAILED",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [self.state_machine_arn], "status": list(ENDED_WITHOUT_OUTCOME)},
            ),
            targets=[targets.LambdaFunction(record_ended.function, dead_letter_queue=self.events_dlq,
                                            retry_attempts=EVENT_RETRY_ATTEMPTS, max_event_age=EVENT_MAX_AGE)],
        )

        # --- the slots' single writer (issue 11) ---------------------------------------------------
        dispatcher = self.slots.dispatcher
        # job_completed turns the notice of a job the dispatcher started into `done` (JobTag = holder).
        self.slots.queue.grant_send_messages(job_completed.function)
        # start_video_workflow nudges admission (a tick) when it finishes an admitted video without an execution.
        start_workflow.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"],
                                                         resources=[self.slots.queue.queue_arn]))
        grant_table(dispatcher.function, storage.semaphore_table, READ_ITEM + QUERY + PUT_ITEM + DELETE_ITEM)
        # Admission reads the video backlog (a partition of the in_flight index), sends those videos to the video
        # queue and marks each admitted (UpdateItem in a transaction, then GetItem); route_task nudges the
        # dispatcher with an extra tick when it adds to the backlog.
        grant_table(dispatcher.function, storage.task_table, QUERY + READ_ITEM + UPDATE_ITEM, indexes=[IN_FLIGHT_INDEX])
        dispatcher.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queue.queue_arn]))
        role = self.notifications.rekognition_role
        machine_ref.grant_task_response(dispatcher.function)  # SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat
        dispatcher.add_to_policy(
            *rekognition_statements(self, operations, starts=True, gets=True, face_collection_id=face_collection_id),
            iam.PolicyStatement(actions=["iam:PassRole"], resources=[role.role_arn],
                                conditions={"StringEquals": {"iam:PassedToService": "rekognition.amazonaws.com"}}),
            # The stored limit follows the account's concurrent stored-video job quota (rekpipe_shared.quotas).
            service_quotas_statement(),
        )
        reasons = [REKOGNITION_STAR_REASON] if operations else []
        acknowledge(dispatcher.role, wildcard_resource("*"), " ".join([*reasons, SERVICE_QUOTAS_STAR_REASON]))
        for bucket in storage.content_buckets:  # Rekognition reads the video with the caller's permissions
            dispatcher.add_to_policy(object_statement(READ_OBJECT_ACTIONS, bucket.bucket_arn))
            acknowledge_objects(dispatcher.role, bucket.bucket_arn,
                                "The slot dispatcher starts each Rekognition Video job, and Rekognition reads the "
                                "video with the caller's permissions; any key of this one bucket "
                                "(GetObject/GetObjectVersion only).")

    def _grant_reuse(self, storage: Storage, queue: sqs.IQueue, start_workflow: PipelineFunction,
                     collect_results: PipelineFunction, record_outcome: PipelineFunction) -> None:
        """Result reuse for videos: start_video_workflow reads the video's checksum (HeadObject), looks
        results up and copies them (ListBucket of one result folder, CopyObject = GetObject + PutObject,
        all under async/), and may finish the task with its manifest; collect_results indexes each
        finished result (PutItem); record_outcome counts what was reused (UpdateItem) and withdraws a failed
        operation's lead (DeleteItem). Each of the three may wake videos waiting on a lead (SendMessage)."""
        output_arn = storage.output_bucket.bucket_arn
        async_prefix = f"{ASYNC_OUTPUT_PREFIX}/"
        for bucket in storage.content_buckets:
            start_workflow.add_to_policy(object_statement(READ_OBJECT_ACTIONS, bucket.bucket_arn))
            acknowledge_objects(start_workflow.role, bucket.bucket_arn,
                                "start_video_workflow reads the checksum of each video (HeadObject with "
                                "ChecksumMode, authorised as s3:GetObject/GetObjectVersion) to reuse the results of "
                                "identical content; the keys are whatever is uploaded or backfilled.")
        start_workflow.add_to_policy(
            object_statement(["s3:GetObject", "s3:PutObject"], output_arn, async_prefix),
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[output_arn],
                                conditions={"StringLike": {"s3:prefix": [f"{async_prefix}*"]}}),
        )
        acknowledge_objects(start_workflow.role, output_arn,
                            "A reused video result is copied (CopyObject reads the source, writes the copy) from "
                            "another video's async/<bucket>/<key>/<version>/run-<n>/<API>/ folder into this one's, "
                            "and the manifest and latest.json of a fully reused video are written; keys known only "
                            "at run time, only under async/.", async_prefix)
        grant_table(start_workflow.function, storage.result_index_table, READ_ITEM + UPDATE_ITEM + DELETE_ITEM)
        grant_table(collect_results.function, storage.result_index_table, PUT_ITEM)
        grant_table(record_outcome.function, storage.result_index_table, UPDATE_ITEM + DELETE_ITEM)
        # Races: a follower waits on the lead without a message; whoever ends the lead (a result indexed,
        # a lead dropped) sends each waiter's message to the video queue again.
        for function in (start_workflow, collect_results, record_outcome):
            queue.grant_send_messages(function.function)

    @property
    def topic(self) -> sns.Topic:
        return self.notifications.topic

    @property
    def rekognition_role(self) -> iam.Role:
        return self.notifications.rekognition_role
