"""Helpers for Pilot tests without an async test plugin: run a scenario in a fresh event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from textual.app import App
from textual.pilot import Pilot


async def until(pilot: Pilot[Any], condition: Callable[[], Any], timeout: float = 5.0) -> None:
    """Let the app run until ``condition()`` holds (thread workers finish off the event loop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting for the app"
        await pilot.pause(0.02)


def drive(app: App[Any], scenario: Callable[[Pilot[Any]], Awaitable[None]], size: tuple[int, int] = (100, 36)) -> None:
    """Run ``scenario`` against ``app`` under the Pilot, at a terminal of ``size``."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())
