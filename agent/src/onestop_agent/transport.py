"""HTTP(S) to the agent API with the stdlib only: CA bundle, proxy, timeout, problem codes."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from onestop_agent import __version__

API_PREFIX = "/api/agent/v1"
TIMEOUT = 20.0
USER_AGENT = f"onestop-agent/{__version__}"


class TransportError(Exception):
    """The server could not be reached or did not answer in time (try again later)."""

    def __init__(self, message: str, *, tls: bool = False) -> None:
        super().__init__(message)
        self.tls = tls


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status, decoded JSON body (or {}), and the problem `code` if any."""

    status: int
    body: dict[str, Any]

    @property
    def code(self) -> str:
        return str(self.body.get("code", ""))

    @property
    def detail(self) -> str:
        return str(self.body.get("detail") or self.body.get("title") or "")


class Client:
    """One server's agent API; every call returns a Response or raises TransportError."""

    def __init__(
        self,
        server: str,
        *,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        authorization: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.server = server.rstrip("/")
        self.authorization = authorization
        self.timeout = timeout
        # Without an explicit proxy, ProxyHandler reads http(s)_proxy and no_proxy from the env.
        proxies = {"http": proxy, "https": proxy} if proxy else None
        context = ssl.create_default_context(cafile=ca_bundle)
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(proxies), urllib.request.HTTPSHandler(context=context)
        )

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Response:
        url = f"{self.server}{API_PREFIX}{path}"
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.authorization:
            headers["Authorization"] = self.authorization
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - the server URL is the operator's, http(s) checked at enrolment
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return Response(resp.status, _decode(resp.read()))
        except urllib.error.HTTPError as exc:
            with exc:
                return Response(exc.code, _decode(exc.read()))
        except urllib.error.URLError as exc:
            reason = exc.reason
            tls = isinstance(reason, ssl.SSLError)
            raise TransportError(f"cannot reach {self.server}: {reason}", tls=tls) from None
        except ssl.SSLError as exc:
            raise TransportError(f"TLS error with {self.server}: {exc}", tls=True) from None
        except (OSError, http.client.HTTPException) as exc:
            # Timeouts while reading, resets, a server that closes mid-answer.
            raise TransportError(f"cannot reach {self.server}: {exc!r}") from None

    def post(self, path: str, body: dict[str, Any]) -> Response:
        return self.request("POST", path, body)

    def get(self, path: str) -> Response:
        return self.request("GET", path)


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
