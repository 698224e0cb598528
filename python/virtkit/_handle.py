"""What domains and networks share: a handle on one object of a connection,
known by a driver reference that carries its name and UUID."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from virtkit.connection import Connection


class _Ref(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def uuid(self) -> bytes: ...


RefT = TypeVar("RefT", bound=_Ref)


class Handle(Generic[RefT]):
    """An object of a connection (a domain, a network), equal to another handle
    of the same kind, connection and UUID."""

    __slots__ = ("_conn", "_ref")

    def __init__(self, conn: Connection, ref: RefT) -> None:
        self._conn = conn
        self._ref = ref

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other._conn is self._conn
                and other._ref.uuid == self._ref.uuid)

    def __hash__(self) -> int:
        return hash(self._ref.uuid)

    @property
    def connection(self) -> Connection:
        """The connection this object belongs to."""
        return self._conn

    @property
    def name(self) -> str:
        """The object's name."""
        return self._ref.name

    @property
    def uuid(self) -> bytes:
        """The object's UUID, 16 raw bytes."""
        return self._ref.uuid

    @property
    def uuid_string(self) -> str:
        """The object's UUID in canonical form."""
        from virtkit.uuid import format_uuid

        return format_uuid(self._ref.uuid)
