"""GET /healthz answers 200 when the database and queue answer, 503 naming the part otherwise."""

from __future__ import annotations

import socket

import pytest
from django.db import OperationalError
from huey import RedisHuey

from onestop.core import health
from tests.conftest import require_peer

pytestmark = pytest.mark.django_db


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"] == {"database": "ok", "queue": "ok"}


def test_queue_down_is_503_naming_the_queue(client, monkeypatch):
    dead = RedisHuey("onestop-dead", url=f"redis://127.0.0.1:{_closed_port()}/0")
    monkeypatch.setattr(health, "HUEY", dead)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["queue"].startswith("queue: ConnectionError")


def test_database_down_is_503_naming_the_database(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "database: OperationalError: connection refused"


def test_real_redis_queue_answers(monkeypatch):
    require_peer(_redis_up(), "Redis is not running on 127.0.0.1:6379")
    monkeypatch.setattr(
        health, "HUEY", RedisHuey("onestop-health-test", url="redis://127.0.0.1:6379/15")
    )
    assert health.check_queue() is None
