"""DECIDE: synchronous, under one lock, no I/O but the store's commit of a transition.

``book`` holds the scope states; ``transitions`` is the only writer of them; ``intake`` turns
validated inputs into ledger updates and rule verdicts; ``orders`` is the pre-trade gate;
``rungs`` the recovery stage the gate sizes by; ``sync`` adopts what other processes wrote.
Nothing here imports from ``effects``, ``control``, ``incidents`` or the ``Guard``: what a
state change sets in motion subscribes to ``Transitions`` instead.
"""
