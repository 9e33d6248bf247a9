"""CONTROL: the one layer the Python API, the CLI and the HTTP API all call.

``commands`` (halts, resumes, and the refusal audit), ``approvals`` (resets, two-person
requests, genome unblocks), ``users`` (roles, tokens, authentication), ``limits`` (run-time
trigger changes, capital allocation), ``agents`` (automated principals' requests) and
``status`` (the one read model). Stopping is never refused; every loosening is authorized,
validated and audited here, and every refusal is audited too.
"""
