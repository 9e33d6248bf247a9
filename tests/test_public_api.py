"""The public surface: what `import tradeguard` offers, the seed's entry point, status()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tradeguard
from tradeguard import Guard


class TestSurface:
    def test_all_when_listed_then_every_name_importable_and_nothing_else(self) -> None:
        """__all__ is the curated surface; each name in it exists."""
        assert sorted(tradeguard.__all__) == tradeguard.__all__
        for name in tradeguard.__all__:
            assert hasattr(tradeguard, name), name
        assert {"Guard", "get_kill_switch", "load_config", "TradeguardError"} <= set(
            tradeguard.__all__
        )

    def test_errors_when_raised_then_share_one_root(self) -> None:
        """Every tradeguard error is a TradeguardError."""
        errors = [
            getattr(tradeguard, n)
            for n in tradeguard.__all__
            if isinstance(getattr(tradeguard, n), type)
            and issubclass(getattr(tradeguard, n), Exception)
        ]
        assert len(errors) >= 8
        assert all(issubclass(e, tradeguard.TradeguardError) for e in errors)


def in_fresh_process(code: str, here: Path, **env: str) -> None:
    """Run ``code`` in a new interpreter (its own process-wide guard) in ``here``; it passes
    ``here`` as ``sys.argv[1]`` and fails the test if an assertion in it fails."""
    environ = {k: v for k, v in os.environ.items() if k != "TRADEGUARD_CONFIG"}
    environ.update(env, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(here)],
        check=False,
        cwd=here,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr


class TestGetKillSwitch:
    def test_get_kill_switch_when_called_twice_then_same_guard(self, tmp_path: Path) -> None:
        """The seed's get_kill_switch() returns one process-wide guard built from TRADEGUARD_CONFIG."""
        config = tmp_path / "c.yaml"
        config.write_text("users: {ops: admin}\ntriggers: {strategy_drawdown: 0.07}\n")
        elsewhere = tmp_path / "cwd"
        elsewhere.mkdir()
        code = """
            import sys
            from pathlib import Path
            from tradeguard import get_kill_switch

            ks = get_kill_switch()
            try:
                assert get_kill_switch() is ks
                assert ks.config.triggers.strategy_drawdown.limit == 0.07
                assert ks.config.state.path == Path(sys.argv[1]).parent / "tradeguard.db"
            finally:
                ks.close()
            """
        in_fresh_process(code, elsewhere, TRADEGUARD_CONFIG=str(config))

    def test_get_kill_switch_when_no_config_then_defaults_in_cwd(self, tmp_path: Path) -> None:
        """Without TRADEGUARD_CONFIG the defaults apply and the DB is tradeguard.db here."""
        code = """
            import sys
            from pathlib import Path
            from tradeguard import PortfolioState, get_kill_switch

            ks = get_kill_switch()
            try:
                assert ks.portfolio_state is PortfolioState.NORMAL
                assert (Path(sys.argv[1]) / "tradeguard.db").exists()
            finally:
                ks.close()
            """
        in_fresh_process(code, tmp_path)


class TestStatus:
    def test_status_when_populated_then_json_with_documented_shape(self, guard: Guard) -> None:
        """status() is JSON-serializable with portfolio, strategies and pending approvals."""
        guard.update_portfolio(equity=1e6, margin_used=1e5, margin_available=9e5)
        guard.update_position("s1", "BTC", 1, 100.0)
        guard.record_trade("s1", -5.0)
        guard.halt_strategy("s2", user="trader1", reason="manual check")
        status = json.loads(json.dumps(guard.status(), allow_nan=False))
        assert set(status) >= {"portfolio", "strategies", "pending_approvals"}
        assert set(status["portfolio"]) >= {"state", "reason", "since"}
        assert status["strategies"]["s2"]["state"] == "halted"
        assert status["strategies"]["s2"]["reason"] == "manual check"
        s1 = status["strategies"]["s1"]
        assert set(s1) >= {"state", "reason", "since", "metrics"}
        assert s1["metrics"]["consecutive_losses"] == 1
        assert status["portfolio"]["metrics"]["margin_utilization"] == pytest.approx(0.1)

    def test_status_when_value_unbounded_then_null_not_infinity(self, guard: Guard) -> None:
        """Non-finite metrics render as null so the JSON stays valid."""
        guard.update_position("s1", "BTC", 1, 100.0)  # no equity yet: position size unbounded
        text = json.dumps(guard.status(), allow_nan=False)
        assert json.loads(text)["strategies"]["s1"]["metrics"]["position_size"] is None
