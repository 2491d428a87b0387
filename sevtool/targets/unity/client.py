"""The Unity Catalog REST client: bounded retries honouring Retry-After, pagination, and the shapes it returns.

The bearer token lives only in the client's headers: never in `display`, an error message or the store.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypedDict
from urllib.parse import quote

import httpx

from sevtool.errors import TargetRejected, TargetUnreachable

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
PAGE_LIMITS = {"/catalogs": 1000, "/schemas": 1000, "/tables": 50}  # the contract's max_results maxima

JSON = dict[str, Any]  # a JSON object as the REST API sends it: open-ended
QueryParams = dict[str, str | int]


class SecurableGone(TargetRejected):
    """HTTP 404: the securable does not exist (never did, or was dropped or renamed). Callers that ask whether a
    table exists, or take grants back from one, treat it as an answer rather than a failure."""


class PrivilegeAssignment(TypedDict, total=False):
    """One entry of a permissions list (`privilege_assignments`), as the server sends it."""

    principal: str
    privileges: list[str]


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class UnityClient:
    """HTTP with bounded retries: 429/5xx/timeouts are retried with backoff honouring Retry-After."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        display: str,
        transport: httpx.BaseTransport | None,
        timeout: float,
        max_retries: int,
        max_wait: float,
        sleep: Callable[[float], None],
    ):
        headers = {"Accept": "application/json", "User-Agent": "sevtool"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
        self.display = display
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.sleep = sleep

    def get(self, path: str, params: QueryParams | None = None) -> JSON:
        return self.request("GET", path, params=params)

    def patch(self, path: str, body: JSON) -> JSON:
        # PATCH add/remove is idempotent, so retrying one whose answer was lost is safe.
        return self.request("PATCH", path, body=body)

    def request(self, method: str, path: str, *, params: QueryParams | None = None, body: JSON | None = None) -> JSON:
        problem = ""
        for attempt in range(self.max_retries + 1):
            wait = min(self.max_wait, 0.5 * 2**attempt)
            try:
                response = self.http.request(method, path, params=params, json=body)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout:g}s"
            except httpx.TransportError as exc:
                problem = f"could not connect ({type(exc).__name__}: {exc})"
            else:
                if response.status_code in RETRYABLE_STATUS:
                    problem = f"HTTP {response.status_code}"
                    hinted = retry_after_seconds(response.headers.get("Retry-After"))
                    if hinted is not None:
                        wait = min(self.max_wait, hinted)
                elif response.status_code >= 400:
                    raise self._rejected(method, path, response)
                else:
                    try:
                        answer: JSON = response.json()  # the API answers with an object
                        return answer
                    except ValueError:
                        raise TargetRejected(
                            f"{self.display}: {method} {path} answered HTTP {response.status_code} with a body that is not JSON",
                            hint="check the URL points at the Unity Catalog API root (…/api/2.1/unity-catalog)",
                        ) from None
            if attempt < self.max_retries:
                self.sleep(wait)
        raise TargetUnreachable(
            f"{self.display}: {method} {path} failed after {self.max_retries + 1} attempts: {problem}",
            hint="check the catalog service and the URL, then run the command again; finished batches are kept",
        )

    def _rejected(self, method: str, path: str, response: httpx.Response) -> TargetRejected:
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = (body.get("message") if isinstance(body, dict) else None) or response.text
        detail = (detail or "").strip()[:300]
        hint = None
        rejected = TargetRejected
        if response.status_code in (401, 403):
            hint = "check the token in the environment variable the target's token_env names, and its privileges (MANAGE on the securable)"
        elif response.status_code == 404:
            hint = "the securable may have been dropped or renamed; re-run the scan"
            rejected = SecurableGone
        return rejected(
            f"{self.display}: {method} {path} was refused: HTTP {response.status_code} {detail}".rstrip(), hint=hint
        )

    def pages(self, path: str, key: str, params: QueryParams) -> Iterator[JSON]:
        """Follow next_page_token, including empty pages that still carry one; stop on a repeated token."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            query: QueryParams = {**params, "max_results": PAGE_LIMITS[path]}
            if token:
                query["page_token"] = token
            body = self.get(path, query)
            yield from body.get(key) or []
            token = body.get("next_page_token") or None
            if token is None:
                return
            if token in seen:
                raise TargetRejected(
                    f"{self.display}: GET {path} returned the page token {token!r} twice; the listing would never end",
                    hint="report this to the catalog's operators",
                )
            seen.add(token)

    def close(self) -> None:
        self.http.close()


def permissions_path(securable_type: str, full_name: str) -> str:
    return f"/permissions/{securable_type}/{quote(full_name, safe='')}"
