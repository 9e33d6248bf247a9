"""What Prometheus and Grafana are given: /metrics passes `promtool check metrics`, the alert
rules pass `promtool check rules` and their unit tests, and the alerts, the dashboard and the
README name only metrics and labels the guard exports.

promtool is required, never skipped: `make system-deps` installs it (Debian's prometheus).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import MakeGuard
from tradeguard import Order
from tradeguard.api.metrics import Metrics

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tradeguard.json"
# Series Prometheus makes itself, beside what the guard exports.
PROMETHEUS_OWN = {"up"}
# Labels Prometheus attaches to every series of a target.
TARGET_LABELS = {"instance", "job"}


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found is not None, "promtool missing: `make system-deps` installs it"
    return subprocess.run(
        [found, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def exposition(make_guard: MakeGuard) -> str:
    """/metrics of a guard that has halted a strategy, refused its next order and tried to
    alert a webhook that refuses connections (a bound port nobody listens on)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        guard = make_guard(alerts={"webhooks": [{"url": url}]})
        metrics = Metrics(guard)
        guard.update_prices({"BTC": 100.0})
        guard.register_strategy("s1")
        guard.update_strategy_metrics("s1", max_drawdown=0.5)
        assert not guard.check_order(Order("s1", "BTC", "buy", 1.0, 100.0)).accepted
        guard.flush()
        body, _ = metrics.render()
    text = body.decode()
    assert 'channel="webhook"' in text
    return text


def exported(text: str) -> dict[str, set[str]]:
    """Every sample name the exposition can carry, with the labels of its family."""
    families: dict[str, set[str]] = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        labels = {
            label
            for line in re.findall(rf"^{name}(?:_\w+)?{{(.*?)}}", text, re.MULTILINE)
            for label in re.findall(r"(\w+)=", line)
        }
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        for suffix in suffixes:
            families[name + suffix] = labels - {"le"} | ({"le"} if suffix == "_bucket" else set())
    return families


def rule_exprs() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for annotation in dashboard["annotations"]["list"]:
        yield annotation["name"], annotation["expr"]


def as_promql(expr: str) -> str:
    """Grafana's variables replaced by what they stand for at query time."""
    return expr.replace("$__rate_interval", "1m").replace("$instance", ".*")


def selectors(expr: str) -> Iterator[tuple[str, set[str]]]:
    """Each metric named in ``expr`` with the label names its selector or grouping uses."""
    grouped = {
        label.strip()
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
        for label in clause.split(",")
        if label.strip()
    }
    for name, matchers in re.findall(r"\b([a-z_]+)\s*(\{[^}]*\})?(?=\s*[\[){=!<>*+\-/ ]|$)", expr):
        if name.startswith("tradeguard_") or name in PROMETHEUS_OWN:
            yield name, set(re.findall(r"(\w+)\s*[=!]~?", matchers)) | grouped


class TestMetricsExposition:
    def test_promtool_check_metrics_when_guard_rendered_then_no_complaint(
        self, exposition: str
    ) -> None:
        """Prometheus's own linter: units in names, `_total` counters, help texts."""
        done = promtool("check", "metrics", stdin=exposition)
        assert (done.returncode, done.stdout + done.stderr) == (0, "")

    def test_readme_metric_list_when_compared_then_every_family(self, exposition: str) -> None:
        """The README's table names each exported family, and no other."""
        readme = (ROOT / "README.md").read_text()
        section = readme[readme.index("### Prometheus and Grafana") :]
        section = section[: section.index("\n#", 1)]
        listed = set(re.findall(r"^\| `(tradeguard_\w+)`", section, re.MULTILINE))
        families = set(re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE))
        assert listed == {f for f in families if not f.endswith("_created")}


def test_readme_scrape_config_when_checked_then_valid(tmp_path: Path) -> None:
    """The README's scrape job, with the alert rules, is a config Prometheus accepts (its
    token file put where this test can make one)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Prometheus and Grafana") :]
    (block,) = re.findall(r"```yaml\n(.*?)```", section[: section.index("\n#", 1)], re.DOTALL)
    config = yaml.safe_load(block)
    token = tmp_path / "tradeguard.token"
    token.write_text("prom.token\n")
    for job in config["scrape_configs"]:
        job["authorization"]["credentials_file"] = str(token)
    config["rule_files"] = [str(RULES)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = promtool("check", "config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [job["job_name"] for job in config["scrape_configs"]] == ["tradeguard"]


class TestAlertRules:
    def test_promtool_check_rules_when_shipped_then_valid(self) -> None:
        done = promtool("check", "rules", str(RULES))
        assert done.returncode == 0, done.stdout + done.stderr

    def test_promtool_test_rules_when_unit_tests_run_then_pass(self) -> None:
        """deploy/prometheus/alerts_test.yml: each alert fires when it should, not before."""
        done = promtool("test", "rules", str(PROMETHEUS / "alerts_test.yml"))
        assert done.returncode == 0, done.stdout + done.stderr

    def test_runbook_when_alert_defined_then_has_its_section(self) -> None:
        runbook = (ROOT / "docs" / "runbook.md").read_text()
        headings = {
            re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", runbook, re.MULTILINE)
        }
        for group in yaml.safe_load(RULES.read_text())["groups"]:
            for rule in group["rules"]:
                anchor = rule["annotations"]["runbook"].partition("#")[2]
                assert anchor == rule["alert"].lower()
                assert anchor in headings, rule["alert"]


@pytest.mark.parametrize(
    ("where", "expr"), [*rule_exprs(), *dashboard_exprs()], ids=lambda v: str(v)[:40]
)
def test_names_when_queried_then_exported(exposition: str, where: str, expr: str) -> None:
    """A renamed metric or label breaks this test, not a dashboard in production."""
    families = exported(exposition)
    named = list(selectors(as_promql(expr)))
    assert named, f"{where}: no metric found in {expr}"
    for name, labels in named:
        if name in PROMETHEUS_OWN:
            continue
        assert name in families, f"{where}: {name} is not exported"
        assert labels - TARGET_LABELS <= families[name], f"{where}: {name} has no {labels}"


def test_dashboard_when_queries_checked_then_valid_promql(tmp_path: Path) -> None:
    """Every panel's query is parsed by promtool (as a recording rule)."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": as_promql(expr)}
                    for i, (_, expr) in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_when_loaded_then_panel_ids_unique() -> None:
    ids = [panel["id"] for panel in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(ids) == len(set(ids))
