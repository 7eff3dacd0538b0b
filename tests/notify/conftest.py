"""Loopback robot receivers for the notify tests."""

from __future__ import annotations

import pytest

from tests.notify.receivers import RobotReceiver


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """The receivers are on loopback; a proxy set for the machine must not sit in between."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def robot():
    """Starts receivers on demand and stops every one after the test."""
    started: list[RobotReceiver] = []

    def start(kind: str, **options) -> RobotReceiver:
        receiver = RobotReceiver(kind=kind, **options).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
