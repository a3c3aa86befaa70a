"""The delivery service's exceptions. Routes turn them into HTTP answers; nothing here
chooses a status code, and no message ever quotes a delivered value."""

from __future__ import annotations


class DeliveryError(Exception):
    """Base of every error the delivery service raises."""


class InvalidSubscription(DeliveryError):
    """A subscription request breaks a rule; ``loc`` names the field, ``rule`` the rule."""

    def __init__(self, loc: tuple[str | int, ...], rule: str, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.rule = rule
        self.message = message


class SubscriptionNotFound(DeliveryError):
    """No subscription has this id."""


class AckBeyondLast(DeliveryError):
    """An acknowledgement names an event number the subscription has not reached."""

    def __init__(self, through: int, last: int) -> None:
        # The number asked for is not quoted: no answer echoes what was sent.
        super().__init__(f"beyond the last event number: the last event number is {last}")
        self.through = through
        self.last = last


class WrongChannel(DeliveryError):
    """The operation belongs to the other channel (ack is for inboxes, resend for webhooks)."""


class DeliveryNotFound(DeliveryError):
    """The recipient has no delivered event with this id."""


class EndpointRefused(DeliveryError):
    """A webhook endpoint may not be reached: its host does not resolve, or resolves to an
    address the recipient may not use. ``rule`` names the rule; the message never quotes
    the URL, the host or an address."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class SecretUnreadable(DeliveryError):
    """A webhook secret stored encrypted cannot be opened (its key is no longer in the
    keyring, or the stored value was altered)."""
