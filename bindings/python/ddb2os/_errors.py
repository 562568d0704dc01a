"""Exceptions raised by ddb2os. Each carries the stable ``id``, the ``path`` inside the input and
the exact ``message`` of the C++ error it mirrors; ``str(e)`` is ``[ddb2os.<id>] <path>: <message>``."""

from __future__ import annotations


class Error(Exception):
    """Base class of every ddb2os error."""

    def __init__(self, id: str, path: str, message: str) -> None:
        self.id = id
        self.path = path
        self.message = message
        super().__init__(f"[ddb2os.{id}] {path + ': ' if path else ''}{message}")

    def __reduce__(self):  # pickled and copied with its three parts and any other attribute (notes)
        return (type(self), (self.id, self.path, self.message), self.__dict__)


class EventError(Error, ValueError):
    """The input is not JSON, or not a DynamoDB Streams event (ids ``json.*``, ``event.*``)."""


class RecordError(Error, ValueError):
    """A stream record's envelope is wrong (ids ``record.*``)."""


class UnmarshalError(Error, ValueError):
    """An attribute value is invalid (ids ``attribute.*``, ``number.*``, ``base64.*``, ``utf8.*``,
    ``set.*``, ``nesting.*``)."""


class DocumentIdError(Error, ValueError):
    """Keys do not fit the key schema (ids ``key.*``)."""


class OptionError(Error, ValueError):
    """An option is invalid (ids ``option.*``, ``index.*``)."""


class SigningError(Error, ValueError):
    """A request cannot be signed (ids ``sigv4.*``)."""


class CredentialsError(Error):
    """No usable AWS credentials (ids ``credentials.*``)."""


_BY_PREFIX = {
    "json": EventError,
    "event": EventError,
    "record": RecordError,
    "attribute": UnmarshalError,
    "number": UnmarshalError,
    "base64": UnmarshalError,
    "utf8": UnmarshalError,
    "set": UnmarshalError,
    "nesting": UnmarshalError,
    "key": DocumentIdError,
    "option": OptionError,
    "index": OptionError,
    "sigv4": SigningError,
    "credentials": CredentialsError,
}


def _make(id: str, path: str, message: str) -> Error:
    """Called by the compiled module to build the exception for a C++ error."""
    return _BY_PREFIX.get(id.split(".", 1)[0], Error)(id, path, message)
