"""Incidents: the KillChain, its phase bodies, and the genome registry it blacklists into.

The chain runs phases through a small ports protocol (``killchain.Ports``) and never imports
the Guard; the phase bodies take what they read (venues, status) as callables.
"""
