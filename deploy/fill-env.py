#!/usr/bin/env python3
"""Replace every placeholder (a value containing REPLACE_ME) of an env file with a fresh secret, in place.

    cp .env.example .env && python3 deploy/fill-env.py .env

A value that is already set is kept, so a second run changes nothing. The metrics API key is made
first and listed, with the read scope only, in BOTHWAYS_API_KEYS next to a new admin key: Prometheus
can then scrape the services it is given to. Only the standard library: it runs on the host, before
any image is built.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

PLACEHOLDER = "REPLACE_ME"
ASSIGNMENT = re.compile(r"^(?P<name>[A-Z_][A-Z0-9_]*)=(?P<value>.*)$")


def token(_: dict[str, str]) -> str:
    return secrets.token_urlsafe(32)


def standard_webhook_secrets(_: dict[str, str]) -> str:
    return json.dumps(["whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()])


def token_list(_: dict[str, str]) -> str:
    return json.dumps([secrets.token_urlsafe(32)])


def api_keys(values: dict[str, str]) -> str:
    return json.dumps(
        {secrets.token_urlsafe(32): ["read", "admin"], values["BOTHWAYS_METRICS_API_KEY"]: ["read"]}
    )


# In order: a generator may read the values made before it.
GENERATORS: dict[str, Callable[[dict[str, str]], str]] = {
    "POSTGRES_PASSWORD": token,
    "GRAFANA_ADMIN_PASSWORD": token,
    "BOTHWAYS_METRICS_API_KEY": token,
    "BOTHWAYS_ALERTMANAGER_TOKEN": token,
    "BOTHWAYS_GENERIC_WEBHOOK_SECRETS": standard_webhook_secrets,
    "BOTHWAYS_SURVEY_TOKEN_SECRETS": token_list,
    "BOTHWAYS_API_KEYS": api_keys,
}


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def fill(text: str) -> tuple[str, list[str]]:
    """The env file with its placeholders replaced, and the names that were filled."""
    values = {m["name"]: unquote(m["value"]) for m in map(ASSIGNMENT.match, text.splitlines()) if m}
    unknown = [name for name, value in values.items() if PLACEHOLDER in value and name not in GENERATORS]
    if unknown:
        raise SystemExit(f"fill-env: no generator for {', '.join(unknown)}; set it by hand")
    filled = []
    for name, generate in GENERATORS.items():
        if PLACEHOLDER in values.get(name, ""):
            values[name] = generate(values)
            filled.append(name)
    lines = []
    for line in text.splitlines():
        match = ASSIGNMENT.match(line)
        if match and match["name"] in filled:
            line = f"{match['name']}='{values[match['name']]}'"
        lines.append(line)
    return "\n".join(lines) + "\n", filled


def main(path: str) -> int:
    env_file = Path(path)
    text, filled = fill(env_file.read_text())
    env_file.write_text(text)
    os.chmod(env_file, 0o600)  # secrets: readable by the operator only
    print(f"{env_file}: generated {', '.join(filled) or 'nothing (no placeholder left)'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python3 deploy/fill-env.py .env")
    sys.exit(main(sys.argv[1]))
