"""The per-test view of the embedded endpoint: ``AwsContext``, what the ``aws`` fixture yields.

The fixtures (tests/integration/conftest.py) reset the endpoint before each test, and after it run the cleanups
registered with ``add_cleanup`` and fail the test if anything is left (``harness.leaks``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.endpoint import EmbeddedAWS
from harness.leaks import format_leftovers, leftover_resources


class AwsContext:
    """What the ``aws`` fixture yields: the endpoint for one test, reset before it and checked after it."""

    def __init__(self, endpoint: EmbeddedAWS) -> None:
        self.endpoint = endpoint
        self.url: str = endpoint.url
        self.region: str = endpoint.region
        # Complete environment for subprocesses: os.environ minus AWS_*/EC2_*/S3_*, plus the endpoint.
        self.env: dict[str, str] = endpoint.env()
        # Regions the teardown leak check covers; append one when a test works in another region.
        self.leak_regions: list[str] = [self.region]
        self._clients: dict[tuple[str, str], Any] = {}
        self._cleanups: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def client(self, service: str, region: str | None = None, **kwargs: Any) -> Any:
        """boto3 client on the endpoint (cached per service and region when no kwargs are given)."""
        region = region or self.region
        if kwargs:
            return self.endpoint.boto3_client(service, region, **kwargs)
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.endpoint.boto3_client(service, region)
        return self._clients[key]

    def add_cleanup(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` at teardown, before the leak check (last added runs first)."""
        self._cleanups.append((func, args, kwargs))

    def run_cleanups(self) -> list[str]:
        errors = []
        while self._cleanups:
            func, args, kwargs = self._cleanups.pop()
            try:
                func(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - collected and reported by the fixture
                errors.append(f"cleanup {getattr(func, '__qualname__', func)!r} failed: {type(exc).__name__}: {exc}")
        return errors

    def leftovers(self, *, include_fixtures: bool = False, regions: Sequence[str] | None = None) -> dict[str, list[str]]:
        """``leftover_resources`` on this endpoint ({} means clean)."""
        return leftover_resources(self, list(regions or self.leak_regions), include_fixtures=include_fixtures)

    def assert_no_leaks(self, *, include_fixtures: bool = False, regions: Sequence[str] | None = None) -> None:
        found = self.leftovers(include_fixtures=include_fixtures, regions=regions)
        assert not found, format_leftovers(found)

    def reset(self) -> None:
        """Empty every moto backend now (the fixture already does it before each test)."""
        self.endpoint.reset()
