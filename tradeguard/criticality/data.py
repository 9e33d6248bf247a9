"""Market histories to replay: the ones PyPI packages ship inside themselves (no network), and
the user's own CSV.

``us-equities`` joins the S&P 500 and NASDAQ composite daily bars (open, high, low, close,
volume; from ``arch``, 1999-2018) with the daily closes of 20 large US stocks (from
``skfolio``) over the dates they share: the indices bring volume and ranges for the liquidity
indicators, the stocks the cross-section.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tradeguard import inputs
from tradeguard.clock import NaiveTime, parse_iso
from tradeguard.criticality.monitor import FIELDS, Bar
from tradeguard.criticality.window import Matrix
from tradeguard.errors import TradeguardError


class DataUnavailable(TradeguardError):
    """A dataset's package is not installed, or a file cannot be read; the message says which.
    Nothing was replayed."""


@dataclass(frozen=True)
class History:
    """Daily (or intraday) bars: ``fields[name]`` is (T, N), NaN where not given."""

    name: str
    times: list[datetime]
    symbols: list[str]
    fields: dict[str, Matrix]

    def bars(self, row: int) -> dict[str, Bar]:
        """The assets with a close on row ``row``, as the monitor takes them."""
        out = {}
        values = [self.fields[f][row] for f in FIELDS]
        for j, symbol in enumerate(self.symbols):
            close = values[0][j]
            if math.isfinite(close):
                out[symbol] = Bar(*(float(v[j]) for v in values))
        return out

    def equal_weight_index(self) -> Matrix:
        """1 at the first row, then the mean log move of the assets priced on both days."""
        with np.errstate(divide="ignore", invalid="ignore"):
            moves = np.diff(np.log(self.fields["close"]), axis=0)
        known = np.isfinite(moves)
        count = known.sum(axis=1)
        mean = np.where(
            count > 0, np.where(known, moves, 0.0).sum(axis=1) / np.maximum(count, 1), 0
        )
        return np.asarray(np.exp(np.concatenate([[0.0], np.cumsum(mean)])))


def _frame(name: str, frames: dict[str, Any]) -> History:
    """Join pandas frames (one per asset, columns Open/High/Low/Close/Volume or Close only) on
    their common dates."""
    import pandas as pd

    index = None
    for frame in frames.values():
        index = frame.index if index is None else index.intersection(frame.index)
    assert index is not None
    index = index.sort_values()
    fields = {f: np.full((len(index), len(frames)), np.nan) for f in FIELDS}
    for j, frame in enumerate(frames.values()):
        aligned = frame.reindex(index)
        for f in ("close", "high", "low", "volume"):
            column = f.capitalize()
            if column in aligned:
                fields[f][:, j] = pd.to_numeric(aligned[column]).to_numpy(float)
    times = [datetime(t.year, t.month, t.day, tzinfo=UTC) for t in index]
    return History(name, times, list(frames), fields)


def _need(package: str) -> Any:
    try:
        return __import__(package)
    except ImportError:
        raise DataUnavailable(
            f"the dataset needs the {package!r} package: pip install 'tradeguard[data]'"
        ) from None


def _index(which: str) -> Any:
    _need("arch")
    from importlib import import_module

    return import_module(f"arch.data.{which}").load()


def _stocks() -> Any:
    _need("skfolio")
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()
    return {s: prices[[s]].rename(columns={s: "Close"}) for s in prices.columns}


DATASETS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "us-equities": (
        "S&P 500 and NASDAQ daily bars with 20 large US stocks, 1999-2018",
        lambda: {"SPX": _index("sp500"), "NASDAQ": _index("nasdaq"), **_stocks()},
    ),
    "sp500": ("S&P 500 daily bars, 1999-2018 (arch)", lambda: {"SPX": _index("sp500")}),
    "nasdaq": (
        "NASDAQ composite daily bars, 1999-2018 (arch)",
        lambda: {"NASDAQ": _index("nasdaq")},
    ),
    "sp500-stocks": ("20 large US stocks, daily closes, 1990-2022 (skfolio)", _stocks),
}


def load(name: str) -> History:
    if name not in DATASETS:
        raise DataUnavailable(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return _frame(name, DATASETS[name][1]())


def load_csv(path: Path) -> History:
    """Columns ``date, symbol, close`` and optionally ``open, high, low, volume, bid, ask``;
    ``date`` is ISO (a day, or a time with its zone). Every bad line is reported by number."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")  # a spreadsheet's BOM is fine
    except OSError as exc:
        raise DataUnavailable(f"{path}: cannot read: {exc.strerror or exc}") from exc
    rows: dict[datetime, dict[str, dict[str, float]]] = {}
    errors = []
    with handle:
        reader = csv.DictReader(handle)
        missing = {"date", "symbol", "close"} - set(reader.fieldnames or ())
        if missing:
            raise DataUnavailable(f"{path}: missing columns {sorted(missing)}")
        for line, record in enumerate(reader, start=2):
            try:
                at = _parse_time(record["date"])
                symbol = record["symbol"].strip()
                if not symbol:
                    raise ValueError("empty symbol")
                given = {}
                for f in FIELDS:
                    text = (record.get(f) or "").strip()
                    if text:
                        try:
                            given[f] = float(text)
                        except ValueError:
                            raise ValueError(f"{f} is not a number: {text!r}") from None
                        if not math.isfinite(given[f]):  # text's own words for nan and inf
                            raise ValueError(f"{f} must be a finite positive number, got {text}")
                values = bar_fields(given)
                day = rows.setdefault(at, {})
                if symbol in day:
                    raise ValueError(f"a second row for {symbol} at {record['date'].strip()}")
                day[symbol] = values
            except (ValueError, KeyError) as exc:
                errors.append(f"line {line}: {exc}")
    if errors:
        shown = "; ".join(errors[:10]) + (
            f"; and {len(errors) - 10} more" if len(errors) > 10 else ""
        )
        raise DataUnavailable(f"{path}: {shown}")
    if not rows:
        raise DataUnavailable(f"{path}: no rows")
    times = sorted(rows)
    symbols = sorted({s for day in rows.values() for s in day})
    fields = {f: np.full((len(times), len(symbols)), np.nan) for f in FIELDS}
    column = {s: j for j, s in enumerate(symbols)}
    for i, at in enumerate(times):
        for symbol, values in rows[at].items():
            for f, value in values.items():
                fields[f][i, column[symbol]] = value
    return History(path.stem, times, symbols, fields)


def bar_fields(value: object, name: str = "") -> dict[str, float]:
    """The one check of a bar, from a live feed (``Guard.update_bars``) or a CSV row: a
    mapping of known fields with a close, each a finite number above 0 (volume may be 0), and
    a bar that can exist (see ``bar_problem``). ``name`` prefixes the messages."""
    where = f"{name}: " if name else ""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{name or 'a bar'} must be a mapping like {{'close': 101.5}}, got {value!r}"
        )
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise ValueError(f"{where}unknown fields {unknown}; known: {list(FIELDS)}")
    if "close" not in value:
        raise ValueError(f"{name or 'the row'} needs a close")
    fields = {}
    for f, v in value.items():
        label = f"{name}.{f}" if name else f
        number = inputs.number(label, v)
        if number < 0 or (f != "volume" and number == 0):
            least = "a finite number >= 0" if f == "volume" else "a finite positive number"
            raise ValueError(f"{label} must be {least}, got {v!r}")
        fields[f] = number
    problem = bar_problem(fields)
    if problem:
        raise ValueError(where + problem)
    return fields


def bar_problem(bar: Mapping[str, float]) -> str | None:
    """What makes a bar impossible: a high below its low, a close outside its range, a bid
    above its ask (a crossed quote would read as a negative spread: calm, not stress)."""
    high, low, close = bar.get("high"), bar.get("low"), bar["close"]
    if high is not None and low is not None:
        if high < low:
            return f"high {high:g} is below low {low:g}"
        if not low <= close <= high:
            return f"close {close:g} is outside its range [{low:g}, {high:g}]"
    bid, ask = bar.get("bid"), bar.get("ask")
    if bid is not None and ask is not None and bid > ask:
        return f"bid {bid:g} is above ask {ask:g}"
    return None


def _parse_time(text: str) -> datetime:
    text = text.strip()
    try:
        at = parse_iso(text)
    except NaiveTime:
        raise ValueError(f"time {text!r} needs a zone (e.g. +00:00), or give a date") from None
    except ValueError:
        raise ValueError(
            f"date {text!r} is neither YYYY-MM-DD nor an ISO time with a zone"
        ) from None
    return at.astimezone(UTC)
