"""Fixtures for the in-process Lambda adapter tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from rekpipe.emulator import InProcessLambdas, ServiceNameResolver
from tests.emulator.moto_functions import TEST_HANDLERS

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def adapter(aws: Any) -> Iterator[InProcessLambdas]:
    """The adapter installed in moto, resolving ``POWERTOOLS_SERVICE_NAME`` in the test handler package."""
    with InProcessLambdas(ServiceNameResolver(package=TEST_HANDLERS)) as installed:
        yield installed
