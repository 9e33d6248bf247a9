"""Assembly: builds the guard's parts and wires them, in one place, in dependency order.

The Guard facade calls ``assemble`` once and delegates to the parts; nothing else builds
them. The order of the state-change subscribers is the order reactions run in: the halt
episode first, then the recovery rung, then the venues, then the incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradeguard.alerts.dispatcher import AlertDispatcher
from tradeguard.auth import Authorizer
from tradeguard.clock import Clock
from tradeguard.config import Config
from tradeguard.control.agents import Agents
from tradeguard.control.approvals import Approvals
from tradeguard.control.commands import Commands
from tradeguard.control.enrollment import Administration
from tradeguard.control.limits import Limits
from tradeguard.control.status import StatusView
from tradeguard.control.users import Users
from tradeguard.effects.backstop import Backstop
from tradeguard.effects.ladder import Climber, Readiness
from tradeguard.effects.reactions import wire_alerts
from tradeguard.effects.stops import Stops
from tradeguard.emergency import Sleep
from tradeguard.engine.book import Book
from tradeguard.engine.core import Core
from tradeguard.engine.intake import Intake
from tradeguard.engine.orders import OrderGate
from tradeguard.engine.rungs import Rungs
from tradeguard.engine.storage import Storage
from tradeguard.engine.sync import StoreSync
from tradeguard.engine.transitions import Transitions
from tradeguard.events import Actuator
from tradeguard.incidents.registry import GenomeRegistry
from tradeguard.incidents.response import IncidentResponse
from tradeguard.ledger import Ledger
from tradeguard.recovery import Ladder
from tradeguard.store import SqliteStore, StateStore


@dataclass(frozen=True, slots=True)
class Parts:
    core: Core
    intake: Intake
    orders: OrderGate
    stops: Stops
    users: Users
    admin: Administration
    genomes: GenomeRegistry
    alerts: AlertDispatcher
    incidents: IncidentResponse
    backstop: Backstop
    sync: StoreSync
    status: StatusView
    commands: Commands
    approvals: Approvals
    limits: Limits
    agents: Agents


def assemble(
    config: Config,
    clock: Clock,
    store: StateStore | None,
    sleep: Sleep,
    *,
    read_only: bool = False,
) -> Parts:
    """Every part, wired; then the store is opened and loaded. A store that cannot be opened
    or loaded leaves the guard in emergency (fail closed), never unbuilt. ``read_only``: a
    reader, which opens the store read-only and never writes, alerts or acts."""
    book = Book(config, read_only=read_only)
    actuator = Actuator(config.guard.callback_timeout_seconds)
    storage = Storage()
    path = config.state.path
    transitions = Transitions(
        book, storage, clock, actuator, path.with_name(path.name + ".emergency")
    )
    core = Core(book, storage, transitions, clock, actuator)
    ledger = Ledger(config.triggers, config.guard.trading_day.calendar())
    for sid, strategy in config.strategies.items():
        ledger.strategy(sid).allocated_capital = strategy.allocated_capital
    intake = Intake(core, ledger=ledger)
    rungs = Rungs(core, ledger=ledger, ladder=Ladder(config.recovery))
    sync = StoreSync(core, ledger=ledger, rungs=rungs, recheck=intake.recheck)
    transitions.follow(sync.watch)  # a redundant-looking halt is decided on the store
    stops = Stops(core, sleep=sleep)
    users = Users(core)
    admin = Administration(core, users=users)
    readiness = Readiness(core, intake=intake, stops=stops)
    climber = Climber(core, rungs=rungs, readiness=readiness, intake=intake, role_of=users.role_of)
    genomes = GenomeRegistry(core, adopt=sync.adopt_genomes)
    alerts = AlertDispatcher(
        config.alerts,
        store=storage.healthy,
        clock=clock,
        submit=actuator.submit,
        emit=actuator.emit,
    )
    wire_alerts(actuator, alerts, config.alerts.dashboard_url)
    if alerts.channels and not read_only:
        actuator.submit(alerts.warm_up)  # in the background: nothing waits
    timeout = config.emergency.call_timeout_seconds

    def snapshot() -> dict[str, Any]:
        return status.snapshot()

    incidents = IncidentResponse(
        core,
        ledger=ledger,
        genomes=genomes,
        snapshot=snapshot,
        venues=lambda: stops.snapshot(timeout),
    )
    backstop = Backstop(
        core,
        intake=intake,
        sync=sync,
        climber=climber,
        stops=stops,
        alerts=alerts,
        resume_incidents=incidents.resume,
    )
    commands = Commands(
        core,
        auth=Authorizer(users.role_of),
        intake=intake,
        rungs=rungs,
        readiness=readiness,
        save_baseline=backstop.save_baseline,
        genomes=genomes,
        incidents=incidents,
    )
    orders = OrderGate(core, ledger=ledger, rungs=rungs)
    approvals = Approvals(
        core,
        commands=commands,
        users=users,
        admin=admin,
        genomes=genomes,
        intake=intake,
        readiness=readiness,
    )
    status = StatusView(
        core,
        intake=intake,
        rungs=rungs,
        climber=climber,
        stops=stops,
        backstop=backstop,
        open_requests=approvals.open_requests,
    )
    parts = Parts(
        core=core,
        intake=intake,
        orders=orders,
        stops=stops,
        users=users,
        admin=admin,
        genomes=genomes,
        alerts=alerts,
        incidents=incidents,
        backstop=backstop,
        sync=sync,
        status=status,
        commands=commands,
        approvals=approvals,
        limits=Limits(core, commands=commands, intake=intake, orders=orders),
        agents=Agents(core, open_incident=incidents.open),
    )
    for subscriber in (book.on_change, rungs.on_change, stops.on_change, incidents.on_change):
        transitions.subscribe(subscriber)
    intake.on_rising.append(incidents.on_breach)
    try:
        key = config.state.audit_key
        storage.store = (
            store
            if store is not None
            else SqliteStore(
                path,
                audit_key=None if key is None else key.get_secret_value().encode(),
                read_only=read_only,
            )
        )
        sync.load()
    except Exception as exc:  # whatever cannot be loaded cannot be trusted: fail closed
        transitions.fail_store(f"cannot load state: {exc!r}")
    return parts
