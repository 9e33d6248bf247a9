"""ACT: what a state change sets in motion, never in the decision path.

``stops`` takes the book flat on the venues; ``ladder`` climbs recovering strategies back to
full size and says whether one is fit to trade; ``reactions`` turns changes and breaches into
alerts, incidents and the reserve's release; ``backstop`` runs the periodic threads (the
breaker tick, the store watcher, the criticality cycle). Each subscribes to the engine's
``Transitions`` or is called by a thread; none of them is waited on by a halt.
"""
