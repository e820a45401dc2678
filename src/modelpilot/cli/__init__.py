"""The ``modelpilot`` command line: Typer commands over the SDK, Rich tables and progress.

Owns argument parsing and presentation only; every rule lives in the services it calls.
Nothing imports this package.
"""
