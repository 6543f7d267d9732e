"""Reading the Grafana dashboards of deploy/grafana/dashboards/: their panels, queries and metric names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "bothways-prometheus"}  # provisioned by the deployment
# What Grafana puts in place of its variables, for promtool to parse the query.
VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$business_service": ".*"}

# PromQL words that are not metric names: functions, aggregations, keywords.
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta", "deriv", "exp", "floor",
    "group", "histogram_quantile", "idelta", "increase", "irate", "label_join", "label_replace",
    "label_values", "last_over_time", "max", "max_over_time", "min", "min_over_time", "quantile",
    "quantile_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc", "sqrt", "stddev",
    "stdvar", "sum", "sum_over_time", "time", "timestamp", "topk", "vector",
}  # fmt: skip
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}
# A histogram is exported as one family; queries read its series.
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries, rows' nested panels included."""
    for panel in board["panels"]:
        yield from (p for p in panel.get("panels", []) if p.get("type") != "row")
        if panel.get("type") != "row":
            yield panel


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for panel in panels(board):
        for target in panel["targets"]:
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            yield f"variable {variable['name']!r}", query["query"] if isinstance(query, dict) else query


def substituted(expr: str) -> str:
    """The query as Prometheus receives it, Grafana's variables replaced."""
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL query reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', substituted(expr))  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    names = set()
    # Not after a digit: the unit of a duration (5m) or of a number is no name.
    for match in re.finditer(r"(?<![0-9A-Za-z_:.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        following = text[match.end() :].lstrip()[:1]
        if word in KEYWORDS or word in FUNCTIONS or following == "(":
            continue
        names.add(word)
    if "label_values(" in expr:  # a Grafana function: label_values(metric, label) names the metric first
        names = {re.search(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", expr).group(1)}  # type: ignore[union-attr]
    return names


def exported_family(name: str, families: set[str]) -> bool:
    """Whether a series name belongs to an exported family (a histogram's _bucket/_sum/_count included)."""
    if name in families:
        return True
    return any(
        name.endswith(suffix) and name.removesuffix(suffix) in families for suffix in HISTOGRAM_SUFFIXES
    )
