"""Errors raised while fetching, starting or stopping the broker."""


class BrokerError(RuntimeError):
    """The broker could not be fetched, started or stopped; the message says what to do."""
