"""Run the project's Lambda handlers in-process when moto invokes a function.

moto 5.2.5 runs Lambda code only in Docker. Every path that runs a function - ``lambda.invoke``
(RequestResponse, Event), Step Functions tasks, SNS subscriptions, SQS and DynamoDB stream event source
mappings, EventBridge targets - ends in the private method ``LambdaFunction._invoke_lambda(self, event)``,
which returns ``(payload_json, is_error, logs)``. :class:`InProcessLambdas` replaces that method with a
dispatcher to our handlers. moto is pinned and ``tests/emulator`` fails loudly if the method changes.
Upstream: docs/upstream/lambda-in-process-execution.md (still in moto at 0af643a, 2026-08-22).

Behaviour, and where it differs from AWS:

* The function's environment variables are applied to ``os.environ`` before its handler module is first
  imported (or re-imported, on a new adapter), so module-scope reads see them. Every variable except
  ``POWERTOOLS_SERVICE_NAME`` must agree across functions; a conflicting value raises
  :class:`EnvironmentConflictError`. During an invocation, a variable that another function sets and this
  one does not is absent, as in the function's own sandbox (:mod:`rekpipe.emulator.invocation_environment`).
  ``uninstall()`` restores ``os.environ``.
* A handler exception becomes the payload ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` with
  the function error flag set (moto reports ``FunctionError: Handled`` where AWS says ``Unhandled``).
  moto's Step Functions interpreter uses ``errorType`` as the error name, as AWS does, so a raised
  ``SlotUnavailableError`` is caught by ``"ErrorEquals": ["SlotUnavailableError"]``. A module that cannot
  be imported gives ``Runtime.ImportModuleError`` and an unserializable result ``Runtime.MarshalError``.
* A handler that outlives the function's ``Timeout`` cannot be stopped (it is a thread); its result is
  replaced by the ``Sandbox.Timedout`` error AWS reports. ``context.get_remaining_time_in_millis()``
  counts down from the configured timeout.
* Invocations run on the caller's thread, so an ``Event`` invoke or an event source mapping completes
  before the API call returns. Concurrent invocations share module state, which AWS never does, so a handler
  keeps per-invocation state in locals and its context (never in a module global); Powertools' metric sets are
  each invocation's own (:mod:`rekpipe.emulator.sandbox_state`). Pass ``serialize_invocations=True`` if a test
  needs one invocation at a time. Each invocation's context is its own
  :class:`~rekpipe.emulator.lambda_context.LambdaContext`.
* moto's DynamoDB applies a request as several unlocked steps, so concurrent conditional writes from
  handler threads can both succeed (measured: 6 of 30 threads won 3 slots). While the adapter is installed
  each DynamoDB request runs under one lock (``rekpipe.emulator.dynamodb_serialization``); a handler started
  by a DynamoDB stream runs outside it, as streams are asynchronous in AWS.
  Upstream: docs/upstream/dynamodb-conditional-writes-not-thread-safe.md (still in moto at 0af643a, 2026-08-22).

Over 400 lines: the adapter's lifecycle, handler resolution, invocation and environment are one replacement of
moto's private invoke method, kept in one place so a moto upgrade that breaks it breaks it here.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto.awslambda.models import LambdaFunction

from rekpipe.emulator import invocation_environment, sandbox_state
from rekpipe.emulator.dynamodb_serialization import outside_dynamodb_lock, serialize_dynamodb
from rekpipe.emulator.lambda_context import LambdaContext
from rekpipe_shared.schema import SERVICE_NAME_ENV

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from types import ModuleType

    Handler = Callable[[Any, Any], Any]
    Resolver = Callable[[str, dict[str, str]], Handler]

MOTO_INVOKE_METHOD = "_invoke_lambda"
"""The private moto method replaced by the adapter."""
EXPECTED_INVOKE_PARAMETERS = ("self", "event")
HANDLER_PACKAGE = "lambdas"
TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"
IMPORT_ERROR_TYPE = "Runtime.ImportModuleError"
MARSHAL_ERROR_TYPE = "Runtime.MarshalError"
_SERVICE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_PROCESS_ENVIRONMENT = "<process environment>"


# --- errors -----------------------------------------------------------------------------------
class LambdaAdapterError(Exception):
    """Base class of the in-process Lambda adapter's errors."""


class EnvironmentConflictError(LambdaAdapterError):
    """Two functions set one environment variable to different values, which one process cannot honour."""

    def __init__(self, key: str, value: str, function_name: str, other_value: str, other_function: str):
        super().__init__(
            f"environment variable {key}={value!r} of function {function_name!r} conflicts with "
            f"{key}={other_value!r} set for {other_function!r}; all functions run in one process, so every "
            f"variable except {SERVICE_NAME_ENV} must agree (use environment_overrides for test-only values)"
        )
        self.key = key
        self.value = value
        self.function_name = function_name
        self.other_value = other_value
        self.other_function = other_function


class HandlerNotFoundError(LambdaAdapterError):
    """No handler is registered or resolvable for a function."""


class AdapterAlreadyInstalledError(LambdaAdapterError):
    """Another adapter already replaces moto's Lambda invocation."""


class MotoIncompatibleError(LambdaAdapterError):
    """moto's private invocation method no longer has the signature this adapter replaces."""


# --- records ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Invocation:
    """One handler run, as recorded in :attr:`InProcessLambdas.invocations`."""

    function_name: str
    request_id: str
    started_at: float
    """Epoch seconds."""
    duration: float
    """Seconds."""
    error_type: str | None = None

    @property
    def is_error(self) -> bool:
        return self.error_type is not None


# --- resolvers --------------------------------------------------------------------------------
class ServiceNameResolver:
    """Default resolver: function environment ``POWERTOOLS_SERVICE_NAME`` -> ``lambdas.<name>.app.handler``.

    A module already imported (by an earlier adapter or test) is re-imported once, so that its module-scope
    clients and settings are rebuilt for the current moto backend and environment.
    """

    def __init__(self, package: str = HANDLER_PACKAGE, module: str = "app", attribute: str = "handler",
                 on_load: dict[str, Callable[[ModuleType], None]] | None = None):
        self.package = package
        self.module = module
        self.attribute = attribute
        self.on_load = dict(on_load or {})
        """Service -> a function run on its module right after each (re)import (the runtime's clock hooks)."""
        self._modules: dict[str, ModuleType] = {}

    def __call__(self, function_name: str, environment: dict[str, str]) -> Handler:
        service = environment.get(SERVICE_NAME_ENV)
        if not service:
            raise HandlerNotFoundError(
                f"function {function_name!r} has no {SERVICE_NAME_ENV} environment variable naming its folder "
                f"under {self.package}/; set it, or register a handler with adapter.register()"
            )
        if not _SERVICE_NAME_PATTERN.match(service):
            raise HandlerNotFoundError(f"{SERVICE_NAME_ENV}={service!r} of {function_name!r} is not a folder name")
        module = self.load_module(service)
        try:
            return getattr(module, self.attribute)
        except AttributeError:
            raise HandlerNotFoundError(f"{module.__name__} has no {self.attribute!r}") from None

    def load_module(self, service: str) -> ModuleType:
        """Import (or re-import, once per resolver) ``<package>.<service>.<module>``."""
        if service not in self._modules:
            name = f"{self.package}.{service}.{self.module}"
            if name in sys.modules:
                self._modules[service] = importlib.reload(sys.modules[name])
            else:
                self._modules[service] = importlib.import_module(name)
            if service in self.on_load:
                self.on_load[service](self._modules[service])
        return self._modules[service]


# --- the adapter ------------------------------------------------------------------------------
_active_adapter: InProcessLambdas | None = None
_install_guard = threading.Lock()


class InProcessLambdas:
    """Replace moto's Docker-based Lambda invocation with in-process calls of our handlers.

    Parameters
    ----------
    resolver: Callable[[str, dict[str, str]], Handler], optional
        Maps a function name and its environment to a handler; defaults to :class:`ServiceNameResolver`.
        It is called once per function, after the function's environment has been applied.
    environment_overrides: Mapping[str, str], optional
        Variables set for every function on top of its own (for example ``AWS_ENDPOINT_URL_REKOGNITION``).
    serialize_invocations: bool
        Run one invocation at a time, process-wide.
    atomic_dynamodb: bool
        Serialize moto DynamoDB requests while installed (see :func:`serialize_dynamodb`).

    Example
    -------
    >>> with mock_aws(), InProcessLambdas() as adapter:
    ...     boto3.client("lambda").invoke(FunctionName="acquire-slot", Payload=b"{}")
    ...     assert adapter.invocations[-1].function_name == "acquire-slot"
    """

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        environment_overrides: Mapping[str, str] | None = None,
        serialize_invocations: bool = False,
        atomic_dynamodb: bool = True,
    ):
        self.resolver: Resolver = resolver or ServiceNameResolver()
        self.environment_overrides = dict(environment_overrides or {})
        self.atomic_dynamodb = atomic_dynamodb
        self.invocations: list[Invocation] = []
        self._registered: dict[str, Handler] = {}
        self._handlers: dict[str, Handler] = {}
        self._applied_env: dict[str, tuple[str, str]] = {}
        self._saved_env: dict[str, str | None] = {}
        self._resolve_lock = threading.RLock()
        self._invocation_lock = threading.RLock() if serialize_invocations else None
        self._original_invoke: Any = None
        self._dynamodb_context: Any = None
        self._environ: invocation_environment.InvocationEnviron | None = None
        self.identity: Callable[[LambdaFunction], Any] | None = None
        """Credentials a function's handler acts with (its role's session); None: the caller's own."""

    # --- lifecycle ------------------------------------------------------------------------------
    def install(self) -> InProcessLambdas:
        """Replace ``LambdaFunction._invoke_lambda``; only one adapter can be installed at a time."""
        global _active_adapter
        with _install_guard:
            if _active_adapter is not None:
                raise AdapterAlreadyInstalledError("an InProcessLambdas adapter is already installed")
            original = check_moto_compatibility()
            adapter = self

            def _invoke_lambda(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
                return adapter.invoke(function, event)

            self._original_invoke = original
            LambdaFunction._invoke_lambda = _invoke_lambda
            _active_adapter = self
            self._environ = invocation_environment.install()
            sandbox_state.install()
        self._apply_environment(_PROCESS_ENVIRONMENT, self.environment_overrides, overriding=True)
        if self.atomic_dynamodb:
            self._dynamodb_context = serialize_dynamodb()
            self._dynamodb_context.__enter__()
        return self

    def uninstall(self) -> None:
        """Restore moto's method and the environment variables this adapter changed."""
        global _active_adapter
        with _install_guard:
            if _active_adapter is not self:
                return
            LambdaFunction._invoke_lambda = self._original_invoke
            _active_adapter = None
        if self._dynamodb_context is not None:
            self._dynamodb_context.__exit__(None, None, None)
            self._dynamodb_context = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        self._applied_env.clear()
        self._handlers.clear()
        invocation_environment.uninstall()
        sandbox_state.uninstall()
        self._environ = None

    def __enter__(self) -> InProcessLambdas:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # --- handlers -------------------------------------------------------------------------------
    def register(self, function_name: str, handler: Handler) -> None:
        """Run ``handler`` for the function named ``function_name`` instead of resolving it."""
        self._registered[function_name] = handler
        self._handlers.pop(function_name, None)

    def handler_for(self, function: LambdaFunction) -> Handler:
        """The handler of a moto function, resolved once (its environment is applied first)."""
        name = function.function_name
        handler = self._handlers.get(name)
        if handler is not None:
            return handler
        with self._resolve_lock:
            if name not in self._handlers:
                environment = {str(k): str(v) for k, v in (function.environment_vars or {}).items()}
                self._apply_function_environment(function, environment)
                if name in self._registered:
                    self._handlers[name] = self._registered[name]
                else:
                    self._handlers[name] = self.resolver(name, environment)
            return self._handlers[name]

    # --- invocation -----------------------------------------------------------------------------
    def invoke(self, function: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        """Run the function's handler on ``event``; returns moto's ``(payload_json, is_error, logs)``."""
        event = _decode_event(event)
        request_id = str(uuid.uuid4())
        timeout = float(function.timeout or 3)
        context = _build_context(function, request_id, timeout)
        started_at, started = time.time(), time.monotonic()
        with outside_dynamodb_lock(), self._serialized():
            payload, error_type = self._run_as_role(function, event, context)
        duration = time.monotonic() - started
        if duration > timeout:
            error_type = TIMEOUT_ERROR_TYPE
            payload = json.dumps(
                {
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
                    "errorType": TIMEOUT_ERROR_TYPE,
                }
            )
        self.invocations.append(
            Invocation(function.function_name, request_id, started_at, duration, error_type=error_type)
        )
        logs = "\n".join(
            [
                f"START RequestId: {request_id} Version: {function.version}",
                f"END RequestId: {request_id}",
                f"REPORT RequestId: {request_id}\tDuration: {duration * 1000:.2f} ms\t"
                f"Memory Size: {function.memory_size} MB",
            ]
        )
        return payload, error_type is not None, logs

    def _run_as_role(self, function: LambdaFunction, event: Any, context: LambdaContext) -> tuple[str, str | None]:
        """Run the handler signed as the function's execution role, when an identity provider is set."""
        if self.identity is None:
            return self._run(function, event, context)
        from rekpipe.emulator.iam.signing import acting_as

        try:
            credentials = self.identity(function)
        except PermissionError as exc:  # the role does not trust lambda.amazonaws.com
            error_type = "Lambda.AccessDeniedException"
            return _error_payload(exc, context.aws_request_id, error_type), error_type
        with acting_as(credentials):
            return self._run(function, event, context)

    def _run(self, function: LambdaFunction, event: Any, context: LambdaContext) -> tuple[str, str | None]:
        with invocation_environment.invocation_environment(self._own_environment(function)), sandbox_state.isolated():
            return self._run_handler(function, event, context)

    def _own_environment(self, function: LambdaFunction) -> dict[str, str]:
        """The variables the function's configuration sets (those the process may hide from it)."""
        return {str(k): str(v) for k, v in (function.environment_vars or {}).items()
                if k != SERVICE_NAME_ENV and k not in self.environment_overrides}

    def _run_handler(self, function: LambdaFunction, event: Any, context: LambdaContext) -> tuple[str, str | None]:
        try:
            handler = self.handler_for(function)
        except EnvironmentConflictError:
            raise
        except Exception as exc:
            return _error_payload(exc, context.aws_request_id, IMPORT_ERROR_TYPE), IMPORT_ERROR_TYPE
        try:
            result = handler(event, context)
        except Exception as exc:
            # Drop this frame, as the runtime's trace starts in the handler.
            return _error_payload(exc, context.aws_request_id, skip_frames=1), type(exc).__name__
        try:
            return json.dumps(result), None
        except (TypeError, ValueError) as exc:
            return _error_payload(exc, context.aws_request_id, MARSHAL_ERROR_TYPE), MARSHAL_ERROR_TYPE

    def invocations_of(self, function_name: str) -> list[Invocation]:
        """The recorded invocations of one function."""
        return [invocation for invocation in self.invocations if invocation.function_name == function_name]

    @contextmanager
    def _serialized(self) -> Iterator[None]:
        if self._invocation_lock is None:
            yield
            return
        with self._invocation_lock:
            yield

    # --- environment ----------------------------------------------------------------------------
    def _apply_function_environment(self, function: LambdaFunction, environment: dict[str, str]) -> None:
        implicit = {"AWS_DEFAULT_REGION": function.region, "AWS_REGION": function.region}
        for key, value in implicit.items():
            if key not in os.environ:
                self._set_env(key, value)
        variables = {k: v for k, v in environment.items() if k != SERVICE_NAME_ENV}
        variables = {k: v for k, v in variables.items() if k not in self.environment_overrides}
        self._apply_environment(function.function_name, variables, overriding=False)
        if self._environ is not None:
            self._environ.manage(frozenset(variables))

    def _apply_environment(self, source: str, variables: Mapping[str, str], *, overriding: bool) -> None:
        with self._resolve_lock:
            for key, value in variables.items():
                if key in self._applied_env and not overriding:
                    other_value, other_source = self._applied_env[key]
                    if other_value != value:
                        raise EnvironmentConflictError(key, value, source, other_value, other_source)
                    continue
                self._applied_env[key] = (value, source)
                self._set_env(key, value)

    def _set_env(self, key: str, value: str) -> None:
        if key not in self._saved_env:
            self._saved_env[key] = os.environ.get(key)
        os.environ[key] = value


def check_moto_compatibility() -> Any:
    """Return moto's ``LambdaFunction._invoke_lambda`` after checking it has the expected signature.

    Raises
    ------
    MotoIncompatibleError
        If moto renamed the method or changed its parameters.
    """
    original = LambdaFunction.__dict__.get(MOTO_INVOKE_METHOD)
    if original is None:
        raise MotoIncompatibleError(f"moto's LambdaFunction has no {MOTO_INVOKE_METHOD}(); the adapter needs updating")
    parameters = tuple(inspect.signature(original).parameters)
    if parameters != EXPECTED_INVOKE_PARAMETERS:
        raise MotoIncompatibleError(
            f"LambdaFunction.{MOTO_INVOKE_METHOD}{parameters} differs from the expected "
            f"{EXPECTED_INVOKE_PARAMETERS}; the adapter needs updating"
        )
    return original


def _build_context(function: LambdaFunction, request_id: str, timeout: float) -> LambdaContext:
    return LambdaContext.for_function(
        function.function_name, timeout_seconds=timeout, memory_limit_in_mb=int(function.memory_size or 128),
        version=str(function.version), function_arn=function.function_arn, request_id=request_id,
    )


def _decode_event(event: Any) -> Any:
    # moto passes the JSON-decoded body, except for an empty body, which arrives as the string "{}".
    if isinstance(event, bytes):
        event = event.decode("utf-8")
    if isinstance(event, str):
        try:
            return json.loads(event)
        except json.JSONDecodeError:
            return event
    return {} if event is None else event


def _error_payload(exc: BaseException, request_id: str, error_type: str | None = None, *, skip_frames: int = 0) -> str:
    trace = exc.__traceback__
    for _ in range(skip_frames):
        trace = trace.tb_next if trace is not None else None
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": error_type or type(exc).__name__,
            "requestId": request_id,
            "stackTrace": traceback.format_tb(trace),
        }
    )
