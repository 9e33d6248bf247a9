"""``tradeguard criticality``: replay a market history through the CriticalityMonitor."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from tradeguard.cli.common import EXIT_USAGE, ConfigOption, JsonOption, err, fail, out
from tradeguard.clock import parse_iso
from tradeguard.config import Config, load_config
from tradeguard.errors import ConfigError
from tradeguard.guard import Guard

criticality_app = typer.Typer(
    help="The CriticalityMonitor: 15 systemic-risk indicators.", no_args_is_help=True
)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_iso(value, "date").date()
    except ValueError:
        raise fail(f"{option} {value!r} is not a date (YYYY-MM-DD)", EXIT_USAGE) from None


@criticality_app.command("replay")
def criticality_replay(
    dataset: Annotated[
        str | None,
        typer.Argument(help="us-equities, sp500, nasdaq or sp500-stocks (or give --csv)."),
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First day reported.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day replayed.")] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            help="Your own history: date, symbol, close[, open, high, low, volume, bid, ask]."
        ),
    ] = None,
    report: Annotated[Path, typer.Option(help="The HTML report with the plots.")] = Path(
        "criticality-replay.html"
    ),
    reset_after: Annotated[
        int,
        typer.Option(min=1, help="The simulated desk lifts a halt after this many quiet days."),
    ] = 10,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay a real history through the monitor and a guard: when the score crossed the
    threshold, what the guard did, and a plot."""
    from tradeguard.criticality import data
    from tradeguard.criticality.replay import render, replay

    if (dataset is None) == (csv is None):
        raise fail("give a DATASET or --csv FILE (one of them)", EXIT_USAGE)
    chosen = config or (Path(env) if (env := os.environ.get("TRADEGUARD_CONFIG")) else None)
    try:
        settings = load_config(chosen) if chosen is not None else Config()
        history = data.load_csv(csv) if csv is not None else data.load(str(dataset))
    except ConfigError as exc:
        raise fail("\n".join(exc.errors)) from exc
    except data.DataUnavailable as exc:
        raise fail(str(exc)) from exc
    try:
        result = replay(
            history,
            settings,
            Guard,
            start=_day(start, "--from"),
            end=_day(end, "--to"),
            reset_after=reset_after,
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    render(result, report)
    scored = sum(score is not None for score in result.scores)
    if scored < len(result.scores):
        err.print(
            f"warning: no score on {len(result.scores) - scored} of {len(result.scores)} days "
            "(warming up, or too few assets with a complete window)",
            highlight=False,
        )
    if not scored:
        raise fail("no day had a score: give --from a later date or a longer history")
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    top = result.max_score
    out.print(
        f"{result.name}: {len(result.days)} days, threshold "
        f"{result.threshold:.2f}, highest score {'-' if top is None else f'{top:.3f}'}"
    )
    for day, score in result.crossings:
        out.print(f"{day}  crossed: score {score:.3f}")
    for action in result.actions:
        out.print(
            f"{action.day}  {action.before} -> {action.after} by {action.by}: {action.reason}"
        )
    out.print(f"report: {report}")
