"""A small market and trading simulator for the demo, the tests and the bench."""
