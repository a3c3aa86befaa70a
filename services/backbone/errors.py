"""One exception hierarchy for the backbone; edges translate these into HTTP or dead letters."""

from __future__ import annotations


class BackboneError(Exception):
    """Base of every error the backbone raises."""


class ConfigurationError(BackboneError):
    """Settings, keys or data files are missing or unusable; the service must not start."""


class EnvelopeError(BackboneError):
    """A Kafka record is not a well-formed infoshare CloudEvent."""


class SchemaViolation(BackboneError):
    """Event data does not conform to the JSON Schema its type and version name."""

    def __init__(self, message: str, *, path: str, rule: str) -> None:
        super().__init__(message)
        self.path = path
        self.rule = rule


class PublishFailed(BackboneError):
    """Kafka did not acknowledge an event; the caller may retry."""


class UnknownEventType(BackboneError):
    """No schema is registered for this event type and version."""


class InputRejected(BackboneError):
    """Native input that cannot be mapped; ``loc`` names the field, ``rule`` the rule broken.
    The message never quotes the input."""

    def __init__(self, loc: list[str | int], msg: str, rule: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg
        self.rule = rule

    def __reduce__(self) -> tuple[type[InputRejected], tuple[list[str | int], str, str]]:
        """Pickled as made: a worker process that parsed the input raises it in the
        service (services/backbone/offload.py)."""
        return type(self), (self.loc, self.msg, self.rule)


class InputTooLarge(InputRejected):
    """Input over a size limit, refused whole and unread: 413, in the shape of a 422."""
