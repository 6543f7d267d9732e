"""Each fact as its platform posts it: Jira, Zendesk and ServiceNow ticket webhooks and Alertmanager
notifications, signed the way each platform signs. Pure: the signing time is passed in.

The shapes follow what ingest's normalisers read and the fixtures in tests/unit/ingest/payloads/:
Jira Cloud issue webhooks (a comment arrives as `jira:issue_updated` with the full issue, so the
snapshot keeps the business service), Zendesk trigger bodies (the only Zendesk webhooks that can carry
a custom field, where the business service lives), the ServiceNow business rule of docs/sources.md, and
Alertmanager's version 4 notification. The business service travels as each platform's default
mapping (services/ingest/mapping.yaml) expects: a Jira component, a ServiceNow `business_service`, an
Alertmanager `business_service` label; and a Zendesk custom field, which needs MAPPING_OVERRIDES.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bothways.signing import signed_headers
from simulator.organisation import Agent, Customer, stable_hex
from simulator.world import (
    Change,
    Fact,
    Ledger,
    OutageFact,
    OutageState,
    Status,
    Ticket,
    TicketFact,
    TicketState,
)

# The Zendesk ticket field holding the business service; ingest learns it from MAPPING_OVERRIDES.
ZENDESK_SERVICE_FIELD = 360_012_345_678
MAPPING_OVERRIDES: dict[str, Any] = {
    "zendesk": {"paths": {"business_service": f"custom_fields.{ZENDESK_SERVICE_FIELD}"}}
}
JIRA_PROJECT = "IT"
SERVICENOW_INSTANCE = "globex-sim"
ALERTMANAGER_URL = "http://alertmanager.globex.example:9093"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"


@dataclass(frozen=True)
class Credentials:
    """What ingest authenticates each simulated platform with."""

    jira_secret: str
    zendesk_secret: str
    servicenow_secret: str  # a Standard Webhooks `whsec_...` secret
    alertmanager_token: str


@dataclass(frozen=True)
class Webhook:
    """One rendered delivery; `key` orders a ticket's (or an outage's) deliveries among themselves."""

    source: str
    body: bytes
    delivery_id: str
    key: str
    fact: Fact
    state: TicketState | OutageState  # after the fact

    @property
    def path(self) -> str:
        return f"/webhooks/{self.source}"


def external_id(ticket: Ticket) -> str:
    """The ticket's id on its platform: a Jira issue key, a Zendesk id, a ServiceNow number."""
    return {
        "jira": f"{JIRA_PROJECT}-{ticket.number}",
        "zendesk": str(ticket.number),
        "servicenow": f"INC{ticket.number:07d}",
    }[ticket.platform]


def ticket_key(ticket: Ticket) -> str:
    """The canonical ticket key ingest gives the ticket (`<source>:<external id>`)."""
    return f"{ticket.platform}:{external_id(ticket)}"


class Renderer:
    """Renders facts in the order they happened, keeping each open ticket's state for its snapshots."""

    def __init__(self) -> None:
        self.ledger = Ledger()

    def render(self, fact: Fact) -> Webhook:
        """The webhook a platform posts for this fact."""
        if isinstance(fact, OutageFact):
            return _alertmanager_webhook(fact, self.ledger.outage(fact))
        before, after = self.ledger.ticket(fact)
        platform = fact.ticket.platform
        payload = RENDERERS[platform](fact, before, after)
        return Webhook(
            source=platform,
            body=_json(payload),
            delivery_id=_delivery_id(fact, after),
            key=ticket_key(fact.ticket),
            fact=fact,
            state=after,
        )


def sign(webhook: Webhook, credentials: Credentials, *, now: datetime) -> dict[str, str]:
    """The headers the platform sends with this delivery, signed at `now`."""
    common = {"content-type": "application/json"}
    if webhook.source == "jira":
        digest = hmac.new(credentials.jira_secret.encode(), webhook.body, hashlib.sha256).hexdigest()
        return {
            **common,
            "user-agent": "Atlassian Webhook HTTP Client",
            "x-atlassian-webhook-identifier": webhook.delivery_id,
            "x-hub-signature": f"sha256={digest}",
        }
    if webhook.source == "zendesk":
        stamp = _zendesk_time(now)
        mac = hmac.new(credentials.zendesk_secret.encode(), stamp.encode() + webhook.body, hashlib.sha256)
        return {
            **common,
            "user-agent": "Zendesk Webhook",
            "x-zendesk-webhook-invocation-id": webhook.delivery_id,
            "x-zendesk-webhook-signature-timestamp": stamp,
            "x-zendesk-webhook-signature": base64.b64encode(mac.digest()).decode(),
        }
    if webhook.source == "servicenow":
        timestamp = int(now.timestamp())
        signed = signed_headers(
            credentials.servicenow_secret, msg_id=webhook.delivery_id, timestamp=timestamp, body=webhook.body
        )
        return {**common, "user-agent": "ServiceNow", **signed}
    return {
        **common,
        "user-agent": "Alertmanager/0.27.0",
        "authorization": f"Bearer {credentials.alertmanager_token}",
    }


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _delivery_id(fact: TicketFact, after: TicketState) -> str:
    """The platform's delivery id: the same fact is the same delivery, so a resend is deduplicated."""
    ticket = fact.ticket
    if ticket.platform == "servicenow":
        # As the business rule in docs/sources.md builds it.
        return f"snow_{_sys_id(ticket)}_{after.revision}"
    digest = stable_hex(ticket.platform, ticket.number, fact.seq)
    if ticket.platform == "jira":
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return str(int(digest[:15], 16))


def _comment_text(state: TicketState, index: int = -1) -> str:
    """Words for one comment: what an agent or a customer would write at that point."""
    first = state.ticket.customer.name.split()[0]
    comment = state.comments[index]
    if comment.agent is None:
        return "Thanks. It started this morning, screenshot attached."
    if comment.after_reopen:
        return f"Sorry it came back, {first}. We are on it again."
    if index in (0, -len(state.comments)):
        return f"Hi {first}, thanks for reporting this. We are looking into it."
    return "Could you tell us when it last worked, and send a screenshot of the error?"


# --- Jira ---------------------------------------------------------------------------------------------

JIRA_STATUSES = {
    Status.NEW: ("Open", "1", "new"),
    Status.OPEN: ("In Progress", "3", "indeterminate"),
    Status.PENDING: ("Waiting for customer", "10002", "indeterminate"),
    Status.RESOLVED: ("Resolved", "5", "done"),
    Status.CANCELED: ("Canceled", "10003", "done"),
}
JIRA_REOPENED = ("Reopened", "4", "indeterminate")
JIRA_PRIORITIES = {"P1": ("Highest", "1"), "P2": ("High", "2"), "P3": ("Medium", "3"), "P4": ("Low", "4")}
JIRA_ISSUE_TYPES = {"incident": "[System] Incident", "request": "[System] Service request"}
# Jira's own name of each update, as its webhooks send in `issue_event_type_name`.
JIRA_EVENT_NAMES = {
    Change.OPENED: "issue_created",
    Change.TAKEN: "issue_work_started",
    Change.REPLIED: "issue_commented",
    Change.CUSTOMER_REPLIED: "issue_commented",
    Change.REASSIGNED: "issue_assigned",
    Change.RESOLVED: "issue_resolved",
    Change.REOPENED: "issue_reopened",
}


def _jira(fact: TicketFact, before: TicketState | None, after: TicketState) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "timestamp": _millis(fact.occurred_at),
        "webhookEvent": "jira:issue_created" if fact.change is Change.OPENED else "jira:issue_updated",
        "issue_event_type_name": JIRA_EVENT_NAMES.get(fact.change, "issue_generic"),
        "user": _jira_actor(fact, after),
        "issue": _jira_issue(after),
    }
    if fact.change in (Change.REPLIED, Change.CUSTOMER_REPLIED):
        payload["comment"] = _jira_comments(after)[-1]
    items = _jira_changelog(fact, before, after)
    if items:
        payload["changelog"] = {"id": str(after.revision), "items": items}
    return payload


def _jira_issue(state: TicketState) -> dict[str, Any]:
    ticket = state.ticket
    comments = _jira_comments(state)
    resolved = state.status is Status.RESOLVED
    return {
        "id": str(ticket.number),
        "self": f"https://globex.atlassian.net/rest/api/2/issue/{ticket.number}",
        "key": external_id(ticket),
        "fields": {
            "summary": ticket.title,
            "issuetype": {"name": JIRA_ISSUE_TYPES[ticket.kind], "subtask": False},
            "project": {"key": JIRA_PROJECT, "name": "IT Support", "projectTypeKey": "service_desk"},
            "status": _jira_status(state),
            "priority": dict(zip(("name", "id"), JIRA_PRIORITIES[state.priority], strict=True)),
            "assignee": _jira_user(state.agent) if state.agent else None,
            "reporter": _jira_customer(ticket.customer),
            "creator": _jira_customer(ticket.customer),
            "created": _jira_time(state.created_at),
            "updated": _jira_time(state.updated_at),
            "resolution": {"id": "10000", "name": "Done"} if resolved else None,
            "resolutiondate": _jira_time(state.resolved_at) if state.resolved_at else None,
            "labels": [],
            "components": [
                {"id": stable_hex("component", ticket.service.id, length=5), "name": ticket.service.id}
            ],
            "comment": {
                "comments": comments,
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            },
        },
    }


def _jira_status(state: TicketState) -> dict[str, Any]:
    reopened = state.status is Status.OPEN and state.reopen_count > 0
    name, status_id, category = JIRA_REOPENED if reopened else JIRA_STATUSES[state.status]
    return {"name": name, "id": status_id, "statusCategory": {"key": category}}


def _jira_comments(state: TicketState) -> list[dict[str, Any]]:
    customer = state.ticket.customer
    rendered = []
    for index, comment in enumerate(state.comments):
        author = _jira_user(comment.agent) if comment.agent else _jira_customer(customer)
        rendered.append(
            {
                "id": str(10_000 + index),
                "author": author,
                "body": _comment_text(state, index),
                "created": _jira_time(comment.at),
                "updated": _jira_time(comment.at),
                "jsdPublic": True,
            }
        )
    return rendered


def _jira_changelog(fact: TicketFact, before: TicketState | None, after: TicketState) -> list[dict[str, Any]]:
    if before is None:
        return []
    items = []
    if before.status is not after.status or fact.change is Change.REOPENED:
        old, new = _jira_status(before), _jira_status(after)
        items.append(_change_item("status", old["id"], old["name"], new["id"], new["name"]))
    if before.agent != after.agent:
        old_agent, new_agent = before.agent, after.agent
        items.append(
            _change_item(
                "assignee",
                _jira_account(old_agent) if old_agent else None,
                old_agent.name if old_agent else None,
                _jira_account(new_agent) if new_agent else None,
                new_agent.name if new_agent else None,
            )
        )
    if before.priority != after.priority:
        (old_name, old_id), (new_name, new_id) = (
            JIRA_PRIORITIES[before.priority],
            JIRA_PRIORITIES[after.priority],
        )
        items.append(_change_item("priority", old_id, old_name, new_id, new_name))
    return items


def _change_item(
    field: str, old: str | None, old_text: str | None, new: str | None, new_text: str | None
) -> dict[str, Any]:
    return {
        "field": field,
        "fieldtype": "jira",
        "from": old,
        "fromString": old_text,
        "to": new,
        "toString": new_text,
    }


def _jira_actor(fact: TicketFact, state: TicketState) -> dict[str, Any]:
    if fact.change in (Change.OPENED, Change.CUSTOMER_REPLIED, Change.REOPENED):
        return _jira_customer(state.ticket.customer)
    agent = fact.agent or state.agent
    return _jira_user(agent) if agent else _jira_automation()


def _jira_account(agent: Agent) -> str:
    return stable_hex("jira-agent", agent.index, length=24)


def _jira_user(agent: Agent) -> dict[str, Any]:
    return {
        "accountId": _jira_account(agent),
        "emailAddress": agent.email,
        "displayName": agent.name,
        "active": True,
        "timeZone": "Europe/Berlin",
        "accountType": "atlassian",
    }


def _jira_customer(customer: Customer) -> dict[str, Any]:
    return {
        "accountId": "qm:" + stable_hex("jira-customer", customer.index, length=32),
        "emailAddress": customer.email,
        "displayName": customer.name,
        "active": True,
        "timeZone": "Europe/Berlin",
        "accountType": "customer",
    }


def _jira_automation() -> dict[str, Any]:
    return {"accountId": "557058:automation", "displayName": "Automation for Jira", "accountType": "app"}


def _jira_time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}+0000"


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- Zendesk ------------------------------------------------------------------------------------------

ZENDESK_STATUSES = {
    Status.NEW: "New",
    Status.OPEN: "Open",
    Status.PENDING: "Pending",
    Status.RESOLVED: "Solved",
}
ZENDESK_PRIORITIES = {"P1": "Urgent", "P2": "High", "P3": "Normal", "P4": "Low"}
ZENDESK_TYPES = {"incident": "Incident", "request": "Question"}
# The `event` each of the admin's triggers writes into its body (see the zendesk normaliser's docstring).
ZENDESK_EVENTS = {
    Change.OPENED: "created",
    Change.REPLIED: "comment_added",
    Change.CUSTOMER_REPLIED: "comment_added",
    Change.REASSIGNED: "assigned",
    Change.REPRIORITIZED: "priority_changed",
}


def _zendesk(fact: TicketFact, before: TicketState | None, after: TicketState) -> dict[str, Any]:
    if after.status not in ZENDESK_STATUSES:
        raise ValueError(f"Zendesk tickets cannot be {after.status}")
    ticket = after.ticket
    customer = ticket.customer
    payload: dict[str, Any] = {
        "event": ZENDESK_EVENTS.get(fact.change, "status_changed"),
        "ticket": {
            "id": str(ticket.number),
            "subject": ticket.title,
            "status": ZENDESK_STATUSES[after.status],
            "priority": ZENDESK_PRIORITIES[after.priority],
            "type": ZENDESK_TYPES[ticket.kind],
            "group": after.group,
            "organization": customer.organisation,
            "assignee": {"id": _zendesk_id(after.agent), "name": after.agent.name}
            if after.agent
            else {"id": "", "name": ""},
            "requester": {
                "id": _zendesk_customer_id(customer),
                "email": customer.email,
                "name": customer.name,
            },
            "created_at": _zendesk_time(after.created_at),
            "updated_at": _zendesk_time(after.updated_at),
            "custom_fields": [{"id": ZENDESK_SERVICE_FIELD, "value": ticket.service.id}],
        },
    }
    if fact.change in (Change.REPLIED, Change.CUSTOMER_REPLIED):
        payload["comment"] = _zendesk_comment(fact, after)
    return payload


def _zendesk_comment(fact: TicketFact, state: TicketState) -> dict[str, Any]:
    customer = state.ticket.customer
    if fact.change is Change.CUSTOMER_REPLIED:
        author = {"id": _zendesk_customer_id(customer), "name": customer.name, "role": "End-user"}
    else:
        agent = fact.agent or state.agent
        assert agent is not None, "an agent's reply has an agent"
        author = {"id": _zendesk_id(agent), "name": agent.name, "role": "Agent"}
    return {"public": "true", "body": _comment_text(state), "author": author}


def _zendesk_id(agent: Agent) -> str:
    return str(900_000_000_000 + agent.index)


def _zendesk_customer_id(customer: Customer) -> str:
    return str(800_000_000_000 + customer.index)


def _zendesk_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


# --- ServiceNow ---------------------------------------------------------------------------------------

SERVICENOW_STATES = {
    Status.NEW: "1",
    Status.OPEN: "2",
    Status.PENDING: "3",
    Status.RESOLVED: "6",
    Status.CANCELED: "8",
}
SERVICENOW_PRIORITIES = {
    "P1": ("1", "1"),
    "P2": ("1", "2"),
    "P3": ("2", "2"),
    "P4": ("3", "3"),
}  # impact, urgency
SERVICENOW_CHANGED = {
    Change.TAKEN: ["state", "incident_state", "assigned_to"],
    Change.REPLIED: ["comments"],
    Change.AWAITING_CUSTOMER: ["state", "incident_state", "hold_reason"],
    Change.CUSTOMER_REPLIED: ["comments"],
    Change.RESUMED: ["state", "incident_state", "hold_reason"],
    Change.REASSIGNED: ["assignment_group", "assigned_to", "reassignment_count"],
    Change.REPRIORITIZED: ["priority", "impact", "urgency"],
    Change.RESOLVED: ["state", "incident_state", "resolved_at", "close_code"],
    Change.REOPENED: ["state", "incident_state", "reopen_count", "reopened_time", "resolved_at"],
    Change.CANCELED: ["state", "incident_state", "active"],
}


def _servicenow(fact: TicketFact, before: TicketState | None, after: TicketState) -> dict[str, Any]:
    opened = fact.change is Change.OPENED
    return {
        "operation": "insert" if opened else "update",
        "table": "incident",
        "instance": SERVICENOW_INSTANCE,
        "changed_fields": ["number", "state", "caller_id", "short_description"]
        if opened
        else SERVICENOW_CHANGED[fact.change],
        "record": _servicenow_record(fact, after),
    }


def _servicenow_record(fact: TicketFact, state: TicketState) -> dict[str, Any]:
    ticket = state.ticket
    customer = ticket.customer
    impact, urgency = SERVICENOW_PRIORITIES[state.priority]
    commented = fact.change in (Change.REPLIED, Change.CUSTOMER_REPLIED)
    return {
        "number": external_id(ticket),
        "sys_id": _sys_id(ticket),
        "sys_class_name": "incident",
        "state": SERVICENOW_STATES[state.status],
        "incident_state": SERVICENOW_STATES[state.status],
        "hold_reason": "1" if state.status is Status.PENDING else "",  # 1: awaiting caller
        "priority": state.priority.removeprefix("P"),
        "impact": impact,
        "urgency": urgency,
        "short_description": ticket.title,
        "business_service": ticket.service.id,
        "cmdb_ci": "",
        "category": "inquiry" if ticket.kind == "request" else "software",
        "assignment_group": state.group,
        "assigned_to": state.agent.name if state.agent else "",
        "caller_id": customer.name,
        "caller_id.user_name": customer.user_name,
        "caller_id.email": customer.email,
        "company": customer.organisation,
        "opened_at": _servicenow_time(state.created_at),
        "sys_created_on": _servicenow_time(state.created_at),
        "sys_updated_on": _servicenow_time(state.updated_at),
        "sys_updated_by": _servicenow_actor(fact, state),
        "sys_mod_count": str(state.revision),
        "resolved_at": _servicenow_time(state.resolved_at) if state.resolved_at else "",
        "closed_at": "",
        "reopen_count": str(state.reopen_count),
        "reassignment_count": str(state.reassignments),
        "comments": _comment_text(state) if commented else "",
        "work_notes": "",
        "active": "false" if state.status is Status.CANCELED else "true",
    }


def _servicenow_actor(fact: TicketFact, state: TicketState) -> str:
    if fact.change in (Change.OPENED, Change.CUSTOMER_REPLIED, Change.REOPENED):
        return state.ticket.customer.user_name
    agent = fact.agent or state.agent
    return agent.user_name if agent else "system"


def _sys_id(ticket: Ticket) -> str:
    return stable_hex("sys_id", ticket.number)


def _servicenow_time(moment: datetime) -> str:
    # The stored value: UTC, to the second (the mapping's time_zone is UTC).
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


RENDERERS = {"jira": _jira, "zendesk": _zendesk, "servicenow": _servicenow}


# --- Alertmanager -------------------------------------------------------------------------------------


def _alertmanager_webhook(fact: OutageFact, state: OutageState) -> Webhook:
    outage = state.outage
    service = outage.service
    labels = {
        "alertname": outage.alertname,
        "business_service": service.id,
        "instance": f"https://{service.id}.globex.example/health",
        "job": "blackbox",
        "severity": outage.severity,
    }
    verb = "down" if outage.severity == "critical" else "degraded"
    annotations = {"summary": f"{service.name} is {verb}"}
    status = "resolved" if state.ended_at else "firing"
    alert = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _alertmanager_time(state.started_at),
        "endsAt": _alertmanager_time(state.ended_at) if state.ended_at else GO_ZERO_TIME,
        "generatorURL": "http://prometheus.globex.example:9090/graph?g0.expr=probe_success%7Bjob%3D%22blackbox%22%7D",
        # Alertmanager's fingerprint is a hash of the label set: the same alert has the same one.
        "fingerprint": stable_hex(*sorted(labels.items()), length=16),
    }
    group = {"alertname": outage.alertname, "business_service": service.id}
    payload = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{outage.alertname}", business_service="{service.id}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "bothways",
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": ALERTMANAGER_URL,
        "alerts": [alert],
    }
    return Webhook(
        source="alertmanager",
        body=_json(payload),
        delivery_id=stable_hex("alertmanager", outage.id, fact.seq),
        key=f"outage:{outage.id}",
        fact=fact,
        state=state,
    )


def _alertmanager_time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
