"""The seed's integration example, runnable: a strategy loop that the guard stops.

    python examples/integration.py

A toy strategy trades until its losses trip the consecutive-loss kill switch; the guard's
callback tells the loop to stop, and the halt is on record in the state DB and audit log.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

from tradeguard import Guard, StrategyState, load_config

CONFIG = """
users:
  trader1: trader
  senior_trader: senior_trader
triggers:
  consecutive_losses: 4
  strategy_drawdown: 0.05
strategies:
  my_strategy:
    allocated_capital: 100000
"""


async def run_strategy(ks: Guard, stop: asyncio.Event) -> int:
    """Trade until told to stop; returns the number of trades made."""
    rng = random.Random(7)
    trades = 0
    while not stop.is_set() and trades < 1_000:
        ks.heartbeat("my_strategy")
        pnl = rng.choice([250.0, -180.0, -180.0])  # a strategy that has stopped working
        ks.record_trade("my_strategy", pnl)
        trades += 1
        await asyncio.sleep(0)  # your order flow would await the venue here
        if ks.strategy_state("my_strategy") is not StrategyState.ACTIVE:
            break  # the guard's state is the source of truth, the callback is the nudge
    return trades


async def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tradeguard-example-"))
    config_file = workdir / "kill_switch_config.yaml"
    config_file.write_text(CONFIG)
    ks = Guard(load_config(config_file))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def on_strategy_halt(strategy_id: str) -> None:
        print(f"Strategy {strategy_id} halted!")
        loop.call_soon_threadsafe(stop.set)  # callbacks run on tradeguard's thread

    ks.register_callback("strategy_halt", on_strategy_halt)
    await ks.start_monitoring()
    trades = await run_strategy(ks, stop)
    ks.flush()
    status = ks.status()["strategies"]["my_strategy"]
    print(f"stopped after {trades} trades: {status['state']} ({status['reason']})")
    print(f"state and audit log in {workdir}")
    ks.close()


if __name__ == "__main__":
    asyncio.run(main())
