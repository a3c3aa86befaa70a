"""Errors raised while fetching, installing, starting or querying a backend."""


class ObserveError(RuntimeError):
    """A backend could not be fetched, installed, started or queried; the message says
    what to do."""
