"""Errors of the operator CLI: what the user can fix (exit 1) and what is a bug (exit 255)."""

from __future__ import annotations

import traceback
from typing import IO, Any

import click

BUG_REPORT_HINT = (
    "This is a bug in rekpipe, not something you did. Please report it to the project's issue tracker "
    "with the command you ran and the traceback above (remove account ids and bucket names you cannot share)."
)


class UserException(click.ClickException):
    """Base class of the errors a user can fix: one line on stderr, exit 1, no traceback.

    Parameters
    ----------
    message: str
        What is wrong, naming the resource, and the next step.
    """

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=True)


class StackNotFoundError(UserException):
    """The pipeline's CloudFormation stack does not exist where the CLI looked."""

    def __init__(self, stack_name: str, region: str, *, endpoint_url: str | None = None) -> None:
        self.stack_name = stack_name
        self.region = region
        self.endpoint_url = endpoint_url
        if endpoint_url:
            message = (f"Stack {stack_name} was not found at {endpoint_url} ({region}): deploy it to the emulator "
                       "with `rekpipe local up`, or pass --stack-name")
        else:
            message = (f"Stack {stack_name} was not found in {region}: deploy it with `npx cdk deploy`, "
                       "or pass --stack-name/--region")
        super().__init__(message)


class StackNotReadyError(UserException):
    """The stack exists but is in a state without usable outputs (rolled back, being created or deleted)."""

    def __init__(self, stack_name: str, region: str, status: str) -> None:
        self.stack_name = stack_name
        self.region = region
        self.status = status
        super().__init__(
            f"Stack {stack_name} in {region} is {status}, so its outputs cannot be used: wait for the deployment "
            "to finish, or fix the error shown in the CloudFormation console and run `npx cdk deploy` again"
        )


class StackOutputMissingError(UserException):
    """The stack lacks an output this command needs (it was deployed from an older version)."""

    def __init__(self, stack_name: str, output: str) -> None:
        self.stack_name = stack_name
        self.output = output
        super().__init__(
            f"Stack {stack_name} has no output {output}: redeploy it from this version with `npx cdk deploy`"
        )


class CredentialsError(UserException):
    """No usable AWS credentials were found."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"{detail}: run `aws configure` (or `aws sso login`), set AWS_PROFILE or pass --profile; "
            "for the local emulator use --local"
        )


class RegionMissingError(UserException):
    """No AWS region was given or configured."""

    def __init__(self) -> None:
        super().__init__(
            "No AWS region is configured: pass --region, set AWS_REGION or add a region to your profile "
            "(`aws configure`); for the local emulator use --local"
        )


class AccessDeniedError(UserException):
    """AWS refused a call for lack of permission."""

    def __init__(self, action: str, detail: str, resource: str | None = None) -> None:
        self.action = action
        self.detail = detail
        self.resource = resource
        on = f" on {resource}" if resource else ""
        super().__init__(
            f"Access denied to {action}{on}: {detail}. Ask for {action}{on}, or use --profile with a role that has it"
        )


class EndpointUnreachableError(UserException):
    """An AWS endpoint (or the local emulator) did not answer."""

    def __init__(self, endpoint: str, *, local: bool) -> None:
        self.endpoint = endpoint
        self.local = local
        hint = ("is the emulator still running? Start it with `rekpipe local up`" if local
                else "check --endpoint-url/--region and your network or proxy settings")
        super().__init__(f"Cannot reach {endpoint}: {hint}")


class EmulatorNotRunningError(UserException):
    """``--local`` was given where no emulator has written its endpoint file."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"No local emulator is running here; start one with `rekpipe local up` (looked for {path})")


class UnhandledException(click.ClickException):
    """Anything the CLI did not expect: traceback and bug-report hint on stderr, exit 255.

    Parameters
    ----------
    command: str
        The command line that failed (``rekpipe status``).
    exception: BaseException
        The original error, shown with its traceback.
    """

    exit_code = 255

    def __init__(self, command: str, exception: BaseException) -> None:
        self.command = command
        self.exception = exception
        super().__init__(f"{type(exception).__name__}: {exception}")

    def show(self, file: IO[Any] | None = None) -> None:
        trace = "".join(traceback.format_exception(self.exception))
        click.echo(trace, file=file, err=True, nl=False)
        click.echo(f"\nAn unexpected error occurred while running `{self.command}`.\n{BUG_REPORT_HINT}", file=file,
                   err=True)


_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "AuthorizationErrorException", "UnauthorizedException", "Forbidden", "403",
})
_CREDENTIAL_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestExpired",
})


def as_user_error(error: BaseException, *, local: bool = False) -> UserException | None:
    """The user-fixable meaning of an AWS SDK error, or None when it is not one.

    Parameters
    ----------
    error: BaseException
        Raised by boto3/botocore.
    local: bool
        The target is the local emulator (changes the hint for an unreachable endpoint).
    """
    from botocore import exceptions as bce

    if isinstance(error, bce.NoCredentialsError | bce.PartialCredentialsError | bce.CredentialRetrievalError):
        return CredentialsError("No usable AWS credentials were found")
    if isinstance(error, bce.TokenRetrievalError | bce.SSOTokenLoadError | bce.UnauthorizedSSOTokenError):
        return CredentialsError("Your AWS SSO session has expired or was never started (run `aws sso login`)")
    if isinstance(error, bce.ProfileNotFound):
        return CredentialsError(str(error))
    if isinstance(error, bce.NoRegionError):
        return RegionMissingError()
    if isinstance(error, bce.EndpointConnectionError | bce.ConnectTimeoutError | bce.ProxyConnectionError):
        return EndpointUnreachableError(str(getattr(error, "kwargs", {}).get("endpoint_url", error)), local=local)
    if isinstance(error, bce.ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        message = str(details.get("Message") or code)
        if code in _CREDENTIAL_CODES:
            return CredentialsError(f"AWS rejected your credentials ({code}: {message})")
        if code in _DENIED_CODES:
            # IAM's own text is the most precise (a CreateJob can be denied iam:PassRole)
            action = _action_in(message) or details.get("RekpipeAction") or error.operation_name
            return AccessDeniedError(str(action), message.rstrip("."), details.get("RekpipeResource"))
    return None


def _action_in(message: str) -> str | None:
    """The action an IAM denial names: ``... is not authorized to perform: sqs:ReceiveMessage on ...``."""
    marker = "perform: "
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split()[0] or None
