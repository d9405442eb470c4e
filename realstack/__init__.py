"""The real-stack profile's servers: install, start, configure and stop real platform components on this machine.

Each component has its own sub-package run as a module, e.g. ``python -m realstack.jasmin up``. They keep
their state under ``.realstack/`` (git-ignored) and their logs under ``results/realstack/``.
"""
