"""What Amazon Rekognition does with its caller's identity, for the Rekognition simulator.

* Every request is authenticated and authorized like any AWS call: ``rekognition:<Operation>`` on the
  collection (SearchFacesByImage, StartFaceSearch), the project version (DetectCustomLabels), or ``*``
  for the APIs that have no resource type (Service Authorization Reference, Amazon Rekognition).
* Rekognition reads the S3 object with the caller's permissions ("Amazon Rekognition ... accesses the
  image in S3 using the permissions of the caller", Rekognition Developer Guide, "Working with images"),
  so the simulator reads it with the caller's credentials.
* A Start* call with a ``NotificationChannel`` passes its role to the service, which needs
  ``iam:PassRole`` on it ("Configuring Amazon Rekognition Video", Developer Guide); the role must trust
  ``rekognition.amazonaws.com``, and the notice is published with that role's credentials.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from rekpipe.emulator.iam.authorization import Refusal, _decide
from rekpipe.emulator.iam.enforcement import REKOGNITION_PRINCIPAL

if TYPE_CHECKING:
    from botocore.credentials import Credentials

    from rekpipe.emulator.iam.enforcement import IamEnforcement


class AccessRefusedError(Exception):
    """A request the simulator refuses on IAM grounds; ``code`` is Rekognition's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Who called the simulator: their ARN and the credentials to act for them."""

    arn: str
    credentials: Credentials


class SimulatorAccess:
    """Authorizes simulator requests against moto's IAM and hands out per-identity clients.

    Parameters
    ----------
    enforcement: IamEnforcement
        The runtime's enforcement (identities, refusal log).
    """

    def __init__(self, enforcement: IamEnforcement) -> None:
        self.enforcement = enforcement
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    def authorize(self, operation: str, params: dict[str, Any], *, method: str, path: str, body: bytes,
                  headers: dict[str, str]) -> Caller:
        """Authenticate the request and authorize its action; raises :class:`AccessRefusedError`."""
        from moto.iam.access_control import IAMRequest

        if "Authorization" not in headers:
            raise AccessRefusedError("MissingAuthenticationTokenException", "Missing Authentication Token")
        try:
            request = IAMRequest(account_id=self.enforcement.account_id, method=method, path=path, data={},
                                 body=body, headers=headers, action=operation)
            request.check_signature()
        except Exception as error:
            raise AccessRefusedError("UnrecognizedClientException",
                                     "The security token included in the request is invalid.") from error
        key = request._access_key
        caller = Caller(arn=key.arn, credentials=key.create_credentials())
        policies = key.collect_policies()
        self._check(caller, policies, f"rekognition:{operation}", self._resource(operation, params))
        role_arn = (params.get("NotificationChannel") or {}).get("RoleArn")
        if role_arn:
            self._check(caller, policies, "iam:PassRole", role_arn)
        return caller

    def s3_client(self, caller: Caller) -> Any:
        """An S3 client that reads as the caller, as Rekognition does."""
        return self._client("s3", caller.credentials)

    def publisher(self, role_arn: str, topic_arn: str) -> Any:
        """An SNS client signing as Rekognition's session of ``role_arn`` (its trust policy is checked)."""
        try:
            session = self.enforcement.service_session(role_arn, REKOGNITION_PRINCIPAL, session_name="rekognition")
        except PermissionError as error:
            raise AccessRefusedError("AccessDeniedException", str(error)) from error
        region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else self.enforcement.region
        return self._client("sns", session.credentials, region)

    def _check(self, caller: Caller, policies: list[Any], action: str, resource: str) -> None:
        reason = _decide(policies, action, resource)
        if reason is None:
            self.enforcement.used.add((caller.arn, action))  # what the role really needed (bench/iam_usage.py)
            return
        refusal = Refusal(principal=caller.arn, action=action, resource=resource, reason=reason)
        self.enforcement.refusals.add(refusal)
        raise AccessRefusedError("AccessDeniedException", refusal.message)

    def _resource(self, operation: str, params: dict[str, Any]) -> str:
        region, account = self.enforcement.region, self.enforcement.account_id
        if "CollectionId" in params and operation in ("SearchFacesByImage", "StartFaceSearch"):
            return f"arn:aws:rekognition:{region}:{account}:collection/{params['CollectionId']}"
        if operation == "DetectCustomLabels" and params.get("ProjectVersionArn"):
            return str(params["ProjectVersionArn"])
        return "*"

    def _client(self, service: str, credentials: Credentials, region: str | None = None) -> Any:
        frozen = credentials.get_frozen_credentials()
        region = region or self.enforcement.region
        cache_key = (service, frozen.access_key, region)
        with self._lock:
            if cache_key not in self._clients:
                self._clients[cache_key] = boto3.client(
                    service, region_name=region, aws_access_key_id=frozen.access_key,
                    aws_secret_access_key=frozen.secret_key, aws_session_token=frozen.token)
            return self._clients[cache_key]


__all__ = ["AccessRefusedError", "Caller", "SimulatorAccess"]
