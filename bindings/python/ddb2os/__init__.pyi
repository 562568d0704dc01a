import datetime
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

__version__: str
__all__ = [
    "__version__",
    "unmarshal",
    "to_json",
    "document_id",
    "bulk_bodies",
    "sign",
    "Signer",
    "handler",
    "BulkResult",
    "BulkRecordError",
    "Error",
    "EventError",
    "RecordError",
    "UnmarshalError",
    "DocumentIdError",
    "OptionError",
    "SigningError",
    "CredentialsError",
]

class Error(Exception):
    id: str
    path: str
    message: str
    def __init__(self, id: str, path: str, message: str) -> None: ...

class EventError(Error, ValueError): ...
class RecordError(Error, ValueError): ...
class UnmarshalError(Error, ValueError): ...
class DocumentIdError(Error, ValueError): ...
class OptionError(Error, ValueError): ...
class SigningError(Error, ValueError): ...
class CredentialsError(Error): ...

class BulkRecordError:
    """A record that could not be turned into an action."""
    @property
    def record(self) -> int: ...
    @property
    def sequence_number(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def message(self) -> str: ...

class BulkResult:
    @property
    def bodies(self) -> List[bytes]: ...
    @property
    def errors(self) -> List[BulkRecordError]: ...
    @property
    def superseded(self) -> int: ...
    @property
    def actions(self) -> int: ...
    @property
    def skipped_ttl(self) -> int: ...
    @property
    def ttl_deletes(self) -> int: ...
    @property
    def body_records(self) -> List[List[int]]: ...
    @property
    def sequence_numbers(self) -> List[str]: ...

def unmarshal(image: Mapping[str, Any]) -> Dict[str, Any]: ...
def to_json(image: Mapping[str, Any], *, numbers: str = ..., lists: str = ...) -> bytes: ...
def document_id(keys: Mapping[str, Any], key_schema: Union[Sequence[str], str]) -> str: ...
def bulk_bodies(
    event: Union[Mapping[str, Any], Sequence[Mapping[str, Any]], bytes, str],
    *,
    index: Optional[str] = ...,
    key_schemas: Optional[Mapping[str, Union[Sequence[str], str]]] = ...,
    numbers: str = ...,
    lists: str = ...,
    max_bytes: int = ...,
    max_actions: int = ...,
    skip_ttl_deletes: bool = ...,
    exclude: Optional[Sequence[str]] = ...,
    include: Optional[Sequence[str]] = ...,
) -> BulkResult: ...
def sign(
    method: str,
    url: str,
    headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None],
    body: Union[bytes, str, None],
    *,
    region: str,
    service: str,
    access_key: str,
    secret_key: str,
    session_token: Optional[str] = ...,
    timestamp: Optional[datetime.datetime] = ...,
) -> Dict[str, str]: ...
class Signer:
    def __init__(
        self, *, region: str, service: str, access_key: str, secret_key: str, session_token: Optional[str] = ...
    ) -> None: ...
    @property
    def region(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def access_key(self) -> str: ...
    def sign(
        self,
        method: str,
        url: Union[str, bytes],
        headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None] = ...,
        body: Union[bytes, str, None] = ...,
        *,
        timestamp: Optional[datetime.datetime] = ...,
    ) -> Dict[str, str]: ...

def handler(
    event: Union[Mapping[str, Any], bytes, str], context: Any = ...
) -> Dict[str, List[Dict[str, str]]]: ...
