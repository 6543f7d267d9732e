"""The two Grafana dashboards as files: fixed uids, the provisioned datasource, a tidy grid, parseable names."""

from __future__ import annotations

import pytest

from tests.grafana_dashboards import DATASOURCE, dashboards, metric_names, panels, queries

pytestmark = pytest.mark.unit


def test_there_are_the_two_dashboards_with_their_fixed_uids_and_titles() -> None:
    found = {name: (board["uid"], board["title"]) for name, board in dashboards().items()}
    assert found == {
        "service-excellence.json": ("bothways-service-excellence", "Service excellence"),
        "bothways-operations.json": ("bothways-operations", "Bothways operations"),
    }


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_queries_the_provisioned_prometheus(name: str) -> None:
    board = dashboards()[name]
    assert board["editable"] is False, "the files are the source of truth"
    for panel in panels(board):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
        assert panel.get("description"), f"{panel['title']}: say what the panel shows"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_panels_sit_on_the_24_column_grid_without_overlapping(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboards()[name]["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
    ids = [panel["id"] for panel in dashboards()[name]["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_query_names_at_least_one_bothways_metric(name: str) -> None:
    for where, expr in queries(dashboards()[name]):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert all(n.startswith("bothways_") for n in names), f"{where}: {names}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (source, outcome) (rate(bothways_webhooks_received_total{a="b"}[$__rate_interval]))',
            {"bothways_webhooks_received_total"},
        ),
        ("histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m])))", {"x_seconds_bucket"}),
        ("a / on (business_service) group_left (metric) b == 1", {"a", "b"}),
        ('c{route=~"/webhooks/.*"} and d unless e offset 5m', {"c", "d", "e"}),
        (
            "label_values(bothways_scorecard_experience_score, business_service)",
            {"bothways_scorecard_experience_score"},
        ),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
