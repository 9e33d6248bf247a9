"""The dashboard in a real headless Chromium: load, see the state, press halt, see it halted."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.api.conftest import Server
from tradeguard.venues import SimulatedVenue

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium is missing: `make test` installs it (apt-get)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/")
    yield page
    context.close()


def connect(page: Page, server: Server, user: str) -> None:
    page.fill("#token", f"{user}.{server.tokens[user]}")
    page.click("#connect")


class TestDashboard:
    def test_dashboard_when_connected_then_shows_states_with_colours(
        self, page: Page, server: Server
    ) -> None:
        """After entering a token the page shows the portfolio and each strategy's state."""
        connect(page, server, "viewer1")
        expect(page.locator("#portfolio-state")).to_have_text("normal")
        expect(page.locator("#portfolio-state")).to_have_class("state normal")
        expect(page.locator('tr[data-strategy="mom"] [data-role="state"]')).to_have_text("active")

    def test_halt_when_pressed_and_confirmed_then_strategy_halted(
        self, page: Page, server: Server
    ) -> None:
        """Press halt, confirm, give a reason: the strategy is halted, on screen and in the guard."""
        connect(page, server, "trader1")
        row = page.locator('tr[data-strategy="mom"]')
        expect(row.locator('[data-role="state"]')).to_have_text("active")
        page.on(
            "dialog",
            lambda dialog: (
                dialog.accept("from the browser") if dialog.type == "prompt" else dialog.accept()
            ),
        )
        row.get_by_role("button", name="Halt").click()
        expect(row.locator('[data-role="state"]')).to_have_text("halted")
        expect(page.locator("#audit")).to_contain_text("from the browser")
        assert server.guard.strategy_state("mom") == "halted"
        if os.environ.get("TRADEGUARD_SCREENSHOT"):  # refreshes the README's picture on demand
            page.screenshot(path=os.environ["TRADEGUARD_SCREENSHOT"], full_page=True)

    def test_stop_when_positions_kept_then_dashboard_says_kept_not_flat(
        self, page: Page, server: Server
    ) -> None:
        """A cancel-only strategy stop shows its verdict: the position is kept, not flat."""
        venue = SimulatedVenue("sim", prices={"BTC": 100.0})
        venue.set_position("BTC", 2.0, strategy_id="mom")
        server.guard.add_venue(venue)
        server.guard.halt_strategy("mom", user="trader1")
        assert server.guard.flush(timeout=10)
        connect(page, server, "viewer1")
        expect(page.locator("#last-stop")).to_contain_text(
            "last stop: strategy:mom: orders cancelled; positions kept: 1 open (BTC)"
        )

    def test_halt_when_confirmation_dismissed_then_nothing_happens(
        self, page: Page, server: Server
    ) -> None:
        """A button press asks first; cancelling leaves everything as it was."""
        connect(page, server, "trader1")
        page.on("dialog", lambda dialog: dialog.dismiss())
        expect(page.locator("#portfolio-state")).to_have_text("normal")
        page.get_by_role("button", name="EMERGENCY").click()
        expect(page.locator("#portfolio-state")).to_have_text("normal")
        assert server.guard.portfolio_state == "normal"

    def test_resume_when_role_too_low_then_error_shown(self, page: Page, server: Server) -> None:
        """A refused action says why on the page and changes nothing."""
        server.guard.halt_strategy("mom", user="trader1")
        connect(page, server, "trader1")
        page.on("dialog", lambda dialog: dialog.accept())
        row = page.locator('tr[data-strategy="mom"]')
        expect(row.locator('[data-role="state"]')).to_have_text("halted")
        row.get_by_role("button", name="Resume").click()
        expect(page.locator("#message")).to_contain_text("needs senior_trader")
        assert server.guard.strategy_state("mom") == "halted"

    def test_incidents_when_one_ran_then_listed_with_who_was_responsible(
        self, page: Page, server: Server
    ) -> None:
        """The incident table shows each incident, its status and the responsible strategy."""
        server.guard.record_trade("mom", -40.0)
        incident = server.guard.start_incident(
            "drill in the browser", "risk1", strategies=["mom"], disable=True
        )
        assert server.guard.wait_incidents(30)
        connect(page, server, "viewer1")
        table = page.locator("#incidents")
        expect(table).to_contain_text(incident.id)
        expect(table).to_contain_text("closed")
        expect(table).to_contain_text("mom")
