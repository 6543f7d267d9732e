"""The ingest service's own metrics."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOKS = Counter(
    "bothways_webhooks_received_total",
    "Webhook deliveries by source and outcome (accepted, duplicate, unauthenticated).",
    ["source", "outcome"],
)
