"""The root of every telco-robot library's exception hierarchy."""


class TelcoError(Exception):
    """Base of the libraries' own errors; Robot shows only the message, not the class name."""

    ROBOT_SUPPRESS_NAME = True
