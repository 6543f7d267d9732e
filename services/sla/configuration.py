"""Storing SLA calendars and policies as immutable versions: seeded from YAML, changed through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bothways.db import Connection
from bothways.errors import Conflict, InvalidInput
from services.sla import store
from services.sla.policy import PolicyConfigError
from services.sla.rulebook import parse_calendars, parse_policies

DEFAULT_CONFIG_FILE = Path(__file__).parent / "policies.yaml"


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML file of calendars and policies."""
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise PolicyConfigError("(root)", f"{path} does not hold a mapping of calendars and policies")
    return config


async def seed(conn: Connection, *, config: dict[str, Any]) -> bool:
    """Load a configuration into an empty store; afterwards the API is the source of truth."""
    await store.lock_config(conn)
    stored = await store.stored_config(conn)
    if stored["policies"] or stored["calendars"]:
        return False
    await put_calendars(conn, definitions=config.get("calendars", []))
    await put_policies(conn, definitions=config.get("policies"))
    return True


async def put_calendars(conn: Connection, *, definitions: object) -> list[dict[str, Any]]:
    """Store each calendar whose definition changed as its next version; returns the calendars in force."""
    await store.lock_config(conn)
    try:
        parsed = parse_calendars(definitions)
    except PolicyConfigError as error:
        raise InvalidInput(str(error)) from error
    stored = await store.stored_config(conn)
    latest = _latest(stored["calendars"])
    for calendar, definition in parsed:
        current = latest.get(calendar.name)
        if current is None or current["definition"] != definition:
            version = (current["version"] if current else 0) + 1
            await store.add_calendar_version(conn, name=calendar.name, version=version, definition=definition)
    return await current_calendars(conn)


async def put_policies(conn: Connection, *, definitions: object) -> list[dict[str, Any]]:
    """Store new policy versions and put the list in force, in order; a changed definition needs a new version."""
    await store.lock_config(conn)
    stored = await store.stored_config(conn)
    try:
        parsed = parse_policies(definitions, calendars={row["name"] for row in stored["calendars"]})
    except PolicyConfigError as error:
        raise InvalidInput(str(error)) from error
    known = {(row["name"], row["version"]): row["definition"] for row in stored["policies"]}
    for position, (policy, definition) in enumerate(parsed):
        existing = known.get((policy.name, policy.version))
        if existing is None:
            await store.add_policy_version(
                conn, name=policy.name, version=policy.version, definition=definition
            )
        elif existing != definition:
            raise Conflict(
                f"policies[{position}]: policy {policy.name!r} version {policy.version} already exists with a "
                "different definition; give the changed policy a new version"
            )
    await store.replace_policy_order(conn, order=[(policy.name, policy.version) for policy, _ in parsed])
    return await current_policies(conn)


async def current_calendars(conn: Connection) -> list[dict[str, Any]]:
    """The latest version of every calendar, by name."""
    stored = await store.stored_config(conn)
    return sorted(_latest(stored["calendars"]).values(), key=lambda row: row["name"])


async def current_policies(conn: Connection) -> list[dict[str, Any]]:
    """The policies in force, in order, with their versions and definitions."""
    stored = await store.stored_config(conn)
    definitions = {(row["name"], row["version"]): row for row in stored["policies"]}
    return [definitions[(row["name"], row["version"])] for row in stored["order"]]


def _latest(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["name"] not in latest or row["version"] > latest[row["name"]]["version"]:
            latest[row["name"]] = row
    return latest
