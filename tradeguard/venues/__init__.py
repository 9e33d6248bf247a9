"""Venues: the protocol, and the built-in simulated venue."""

from tradeguard.venues.base import (
    OrderRejected,
    Side,
    Venue,
    VenueDown,
    VenueError,
    VenueOrder,
    VenuePosition,
    VenueTimeout,
)
from tradeguard.venues.sim import Faults, SimulatedVenue

__all__ = [
    "Faults",
    "OrderRejected",
    "Side",
    "SimulatedVenue",
    "Venue",
    "VenueDown",
    "VenueError",
    "VenueOrder",
    "VenuePosition",
    "VenueTimeout",
]
