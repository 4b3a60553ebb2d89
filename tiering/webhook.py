"""The restore webhook: a signed JSON POST announcing each completed restore.

Configured by ``tiering.restore_webhook_url`` and ``tiering.restore_webhook_secret``. Each
message is one JSON object (:func:`tiering.restores.restore_message`, ``event`` =
``restore.completed``) sent with::

    Content-Type: application/json
    X-CoolStorage-Event: restore.completed
    X-CoolStorage-Delivery: <unique id of this message>
    X-CoolStorage-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>

A receiver recomputes the HMAC over the body bytes exactly as received and compares in
constant time (:func:`verify_signature`); the body carries ``sent_at`` to let it refuse
replays. A 2xx answer is a delivery; a network error, 408, 429 or 5xx is retried with
exponential backoff (1, 2, 4... seconds) up to ``restore_webhook_attempts`` times; any other
answer is final. The engine marks a restore announced only after a delivery, so a message
not delivered is tried again at the next poll round. Delivery is at least once, not
exactly once: a receiver should identify a completion by ``blob.key`` and
``completed_at``, not by the delivery id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import trio

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-CoolStorage-Signature"
EVENT_HEADER = "X-CoolStorage-Event"
DELIVERY_HEADER = "X-CoolStorage-Delivery"
_RETRY_STATUS = frozenset({408, 429})


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    #: The HMAC key; never logged.
    secret: bytes
    attempts: int = 5
    #: First retry delay in seconds, doubled each time.
    backoff: float = 1.0
    timeout: float = 10.0


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does: True if ``header`` signs ``body`` with ``secret``."""
    return hmac.compare_digest(sign(secret, body), header.strip())


def encode(message: dict[str, Any]) -> bytes:
    """The message as sent: compact JSON with a ``sent_at`` time."""
    stamped = {**message, "sent_at": datetime.now(UTC).isoformat()}
    return json.dumps(stamped, separators=(",", ":"), sort_keys=True).encode("utf-8")


async def deliver(
    settings: WebhookSettings,
    message: dict[str, Any],
    *,
    client: httpx.AsyncClient | None = None,
) -> bool:
    """POST ``message``; True once a receiver answered 2xx, False when the attempts ran
    out or the receiver refused it for good."""
    body = encode(message)
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: str(message.get("event", "message")),
        DELIVERY_HEADER: uuid.uuid4().hex,
        SIGNATURE_HEADER: sign(settings.secret, body),
    }
    own = client is None
    http = client or httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False)
    delay = settings.backoff
    try:
        for attempt in range(1, settings.attempts + 1):
            try:
                response = await http.post(settings.url, content=body, headers=headers)
            except httpx.HTTPError as error:
                reason = f"{type(error).__name__}: {error}"
            else:
                if 200 <= response.status_code < 300:
                    return True
                reason = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in _RETRY_STATUS:
                    log.warning("restore webhook refused the message (%s); not retrying", reason)
                    return False
            if attempt == settings.attempts:
                log.warning(
                    "restore webhook failed %d times (%s); will try again later",
                    attempt,
                    reason,
                )
                return False
            log.debug("restore webhook attempt %d failed (%s); retrying", attempt, reason)
            await trio.sleep(delay)
            delay *= 2
        return False
    finally:
        if own:
            await http.aclose()
