"""One small exception hierarchy for the Jasmin real-stack helper."""

from __future__ import annotations


class RealStackError(Exception):
    """A real-stack step failed; the message names the thing and how to fix it."""

    ROBOT_SUPPRESS_NAME = True


class JCliError(RealStackError):
    """jCli refused a command: the message quotes the command (secrets masked) and jCli's reply."""


class JCliConnectionError(RealStackError):
    """jCli could not be reached, closed the connection, or did not answer in time."""
