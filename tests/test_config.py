"""The YAML configuration: the seed's file as it is, the full form, and every error by key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tradeguard import Action, ConfigError, Role, load_config
from tradeguard.config import config_warnings, parse_config

SEED_CONFIG = """
# Alert channels
alerts:
  slack_webhook: "https://hooks.slack.com/services/YOUR/WEBHOOK"

  email:
    enabled: true
    smtp_server: "smtp.gmail.com"
    username: "alerts@yourfirm.com"
    password: "${EMAIL_PASSWORD}"  # Use env vars for secrets
    to_addresses: ["risk@yourfirm.com"]

  pagerduty_key: "${PAGERDUTY_KEY}"

# Trigger thresholds
triggers:
  strategy_drawdown: 0.05      # 5%
  portfolio_drawdown: 0.10     # 10%
  portfolio_daily_loss: 0.03   # 3%
"""

SECRETS = {"EMAIL_PASSWORD": "hunter2", "PAGERDUTY_KEY": "pd-key"}
CLI = Path(sys.executable).parent / "tradeguard"


def errors_of(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={})
    return caught.value.errors


class TestSeedFile:
    def test_seed_file_when_loaded_as_is_then_limits_and_secrets_apply(
        self, tmp_path: Path
    ) -> None:
        """The seed README's config file loads unchanged, with secrets from the environment."""
        path = tmp_path / "kill_switch_config.yaml"
        path.write_text(SEED_CONFIG)
        config = load_config(path, env=SECRETS)
        assert config.triggers.strategy_drawdown.limit == 0.05
        assert config.triggers.portfolio_drawdown.limit == 0.10
        assert config.triggers.portfolio_daily_loss.limit == 0.03
        assert config.alerts.email.password is not None
        assert config.alerts.email.password.get_secret_value() == "hunter2"
        assert config.alerts.pagerduty_key is not None
        assert config.alerts.pagerduty_key.get_secret_value() == "pd-key"

    def test_secret_when_printed_then_masked(self, tmp_path: Path) -> None:
        """Secrets never appear in the repr of the config (and so not in logs)."""
        path = tmp_path / "c.yaml"
        path.write_text(SEED_CONFIG)
        config = load_config(path, env=SECRETS)
        assert "hunter2" not in repr(config)
        assert "pd-key" not in str(config.alerts)

    def test_env_var_when_missing_then_error_names_variable_and_key(self, tmp_path: Path) -> None:
        """A missing ${VAR} is an error naming both the variable and where it is used."""
        path = tmp_path / "c.yaml"
        path.write_text(SEED_CONFIG)
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={"EMAIL_PASSWORD": "x"})
        assert caught.value.errors == [
            "alerts.pagerduty_key: environment variable PAGERDUTY_KEY is not set"
        ]

    def test_state_path_when_relative_then_beside_the_config_file(self, tmp_path: Path) -> None:
        """The default state DB is tradeguard.db in the config file's directory."""
        path = tmp_path / "sub" / "c.yaml"
        path.parent.mkdir()
        path.write_text("triggers: {}\n")
        assert load_config(path).state.path == path.parent.resolve() / "tradeguard.db"


class TestUrls:
    @pytest.mark.parametrize(
        ("alerts", "key"),
        [
            ({"webhooks": [{"url": "ftp://x"}]}, "alerts.webhooks.0.url"),
            (
                {"webhooks": [{"url": "https://ok.example"}, {"url": "ops.example"}]},
                "alerts.webhooks.1.url",
            ),
            ({"slack_webhook": "file:///etc/passwd"}, "alerts.slack_webhook"),
            ({"pagerduty_url": "https://"}, "alerts.pagerduty_url"),
            ({"dashboard_url": "javascript:alert(1)"}, "alerts.dashboard_url"),
        ],
        ids=["ftp-webhook", "no-scheme", "file-slack", "no-host", "javascript-link"],
    )
    def test_url_when_not_http_then_error_names_the_key(
        self, alerts: dict[str, Any], key: str
    ) -> None:
        """Alerts go over HTTP(S): any other URL is refused at load, with where it stands."""
        assert errors_of({"alerts": alerts}) == [
            f"{key}: must be an http:// or https:// URL with a host"
        ]

    def test_url_when_secret_and_wrong_then_error_does_not_echo_it(self) -> None:
        """A Slack webhook URL is a credential: the error names the key, never the value."""
        errors = errors_of({"alerts": {"slack_webhook": "ftp://hooks/T0/B0/s3cr3t"}})
        assert errors and not any("s3cr3t" in e for e in errors)

    def test_url_when_http_or_https_then_accepted(self) -> None:
        """Plain HTTP (a receiver on localhost) and HTTPS both load."""
        config = parse_config(
            {"alerts": {"webhooks": [{"url": "http://127.0.0.1:9/h"}, {"url": "HTTPS://a.b/c"}]}}
        )
        assert [w.url for w in config.alerts.webhooks] == ["http://127.0.0.1:9/h", "HTTPS://a.b/c"]


class TestFullForm:
    def test_trigger_when_full_form_then_limit_action_and_parameters_apply(self) -> None:
        """Every trigger takes a mapping with its limit, its action and its own parameters."""
        config = parse_config(
            {
                "triggers": {
                    "portfolio_drawdown": {"limit": 0.2, "action": "emergency"},
                    "win_rate": {"limit": 0.4, "min_trades": 50},
                    "pnl_velocity": {"limit": 0.05, "window_seconds": 30},
                }
            }
        )
        assert config.triggers.portfolio_drawdown.action is Action.EMERGENCY
        assert config.triggers.win_rate.min_trades == 50
        assert config.triggers.pnl_velocity.window_seconds == 30

    def test_defaults_when_nothing_configured_then_seed_values(self) -> None:
        """Defaults follow the seeds: 5% strategy drawdown, 5 losses, 30% win rate, 3%/10%."""
        t = parse_config({}).triggers
        assert (t.strategy_drawdown.limit, t.consecutive_losses.limit, t.win_rate.limit) == (
            0.05,
            5,
            0.30,
        )
        assert (t.portfolio_daily_loss.action, t.portfolio_drawdown.action) == (
            Action.SOFT_HALT,
            Action.HARD_HALT,
        )
        assert t.stuck_agent.limit == 300 and t.agent_capital.limit == 1.0

    def test_users_when_role_names_given_then_parsed_case_insensitively(self) -> None:
        """Users map names to the five ordered roles."""
        config = parse_config({"users": {"ann": "Risk_Manager", "bo": "viewer"}})
        assert config.users == {"ann": Role.RISK_MANAGER, "bo": Role.VIEWER}
        assert Role.VIEWER < Role.TRADER < Role.SENIOR_TRADER < Role.RISK_MANAGER < Role.ADMIN

    def test_strategy_override_when_given_then_only_that_strategy_changes(self) -> None:
        """A per-strategy trigger replaces the global one for that strategy only."""
        config = parse_config({"strategies": {"hf": {"triggers": {"strategy_drawdown": 0.2}}}})
        assert config.triggers_for("hf").strategy_drawdown.limit == 0.2
        assert config.triggers_for("other").strategy_drawdown.limit == 0.05


class TestErrors:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (
                {"triggers": {"strategy_drawdown": 1.5}},
                "triggers.strategy_drawdown: must be in (0, 1]; write 0.015 for 1.5%",
            ),
            (
                {"triggers": {"strategy_drawdown": 5}},
                "triggers.strategy_drawdown: must be in (0, 1]; write 0.05 for 5%",
            ),
            (
                {"triggers": {"strategy_drawdown": 0}},
                "triggers.strategy_drawdown: must be in (0, 1]",
            ),
            (
                {"triggers": {"portfolio_drawdown": {"limit": -0.1}}},
                "triggers.portfolio_drawdown.limit: must be in (0, 1]",
            ),
            (
                {"triggers": {"strategy_drawdown": float("nan")}},
                "triggers.strategy_drawdown: Input should be a finite number",
            ),
            (
                {"triggers": {"consecutive_losses": 2.5}},
                "triggers.consecutive_losses: Input should be a valid integer",
            ),
            (
                {"triggers": {"strategy_drawdown": True}},
                "triggers.strategy_drawdown: Input should be a valid dictionary or instance of "
                "StrategyDrawdown",
            ),
            (
                {"users": {"bob": "god"}},
                "users.bob: unknown role 'god'; expected one of viewer, "
                "trader, senior_trader, risk_manager, admin",
            ),
            (
                {"breaker": {"interval_seconds": 0}},
                "breaker.interval_seconds: must be > 0",
            ),
        ],
    )
    def test_invalid_value_when_loaded_then_error_with_key_path(
        self, data: object, expected: str
    ) -> None:
        """Each invalid value is reported with its key path and what is allowed."""
        assert expected in errors_of(data)

    def test_unknown_key_when_misspelt_then_error_not_default(self) -> None:
        """A typo in a risk limit is an error: it must not silently fall back to the default."""
        assert errors_of({"triggers": {"strategy_drawdwn": 0.01}}) == [
            "triggers.strategy_drawdwn: unknown key (check the spelling; unknown keys are not ignored); did you mean strategy_drawdown?"
        ]

    def test_portfolio_trigger_when_strategy_action_then_error(self) -> None:
        """A portfolio trigger cannot halt 'a strategy': there is none to halt."""
        errors = errors_of({"triggers": {"portfolio_daily_loss": {"action": "halt_strategy"}}})
        assert errors == [
            "triggers.portfolio_daily_loss: action of a portfolio trigger must be one of "
            "soft_halt, hard_halt, emergency"
        ]

    def test_many_errors_when_loaded_then_all_reported_at_once(self) -> None:
        """Validation collects every problem before reporting."""
        errors = errors_of(
            {"triggers": {"strategy_drawdown": 2, "win_rate": {"min_trades": 0}}, "nope": 1}
        )
        assert len(errors) == 3

    def test_top_level_when_not_a_mapping_then_error(self) -> None:
        """A YAML list or scalar is not a config."""
        assert errors_of([1, 2]) == ["(top level): must be a mapping of sections"]


class TestWarnings:
    @pytest.mark.parametrize(
        ("users", "fragment"),
        [
            ({}, "no users"),
            ({"a": "trader"}, "no risk_manager or admin"),
            ({"a": "admin", "b": "trader"}, "fewer than two"),
        ],
    )
    def test_users_when_nobody_can_lift_then_warned(
        self, users: dict[str, str], fragment: str
    ) -> None:
        """A config under which a halt could never be lifted is valid, but warned about."""
        assert any(fragment in w for w in config_warnings(parse_config({"users": users})))

    def test_users_when_two_risk_managers_then_no_warning(self) -> None:
        """Two people who can lift an emergency: nothing to warn about."""
        warnings = config_warnings(parse_config({"users": {"a": "admin", "b": "risk_manager"}}))
        assert [w for w in warnings if not w.startswith("alerts:")] == []


class TestConfigCheckCommand:
    def test_config_check_when_valid_then_prints_ok(self, tmp_path: Path) -> None:
        """`tradeguard config check` prints ok and exits 0 for a valid file."""
        path = tmp_path / "c.yaml"
        path.write_text(SEED_CONFIG)
        env = {"EMAIL_PASSWORD": "x", "PAGERDUTY_KEY": "y", "PATH": "/usr/bin:/bin"}
        done = subprocess.run(
            [CLI, "config", "check", path], capture_output=True, text=True, env=env, check=False
        )
        assert (done.returncode, done.stdout.strip()) == (0, "ok")

    def test_config_check_when_invalid_then_every_error_and_exit_1(self, tmp_path: Path) -> None:
        """Every error is printed with its key path, and the exit code is 1."""
        path = tmp_path / "c.yaml"
        path.write_text("triggers:\n  strategy_drawdown: 1.5\n  portfolio_drawdwn: 0.1\n")
        done = subprocess.run(
            [CLI, "config", "check", path], capture_output=True, text=True, check=False
        )
        assert done.returncode == 1
        assert "triggers.strategy_drawdown: must be in (0, 1]" in done.stderr
        assert "triggers.portfolio_drawdwn: unknown key" in done.stderr
