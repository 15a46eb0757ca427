"""The statements every command and every consumed message runs, on the driver directly.

SQLAlchemy's execution of a Core statement (the compiled cache's lookup, the
parameters and their processors, the cursor adapter and the result's metadata, each
step through a greenlet) costs more CPU than asyncpg's own execution of it: about
150 µs on top of asyncpg's 130 µs per statement on this project's machines. The append, the
processed mark, the log's read and the read-model writes of the busiest policies run
several statements per command, so that overhead was most of a service's CPU.

:func:`fetch` and :func:`execute` take a Core statement built once (a module constant,
or one kept by its owner), compile it once per dialect, schema and set of parameter
names, and on PostgreSQL run it on the connection's asyncpg connection, inside the
transaction SQLAlchemy holds on it: started, when it is not yet, exactly as
SQLAlchemy's own cursor would start it (the connection's isolation level), and
committed or rolled back by SQLAlchemy as before. Errors come out as SQLAlchemy's
(``IntegrityError``, ``OperationalError``, …, parameters hidden), and a lost
connection is invalidated as SQLAlchemy would. On SQLite they are SQLAlchemy's
``execute``.

Only statements whose every value is a bound parameter of the call or of the statement
itself qualify: none with a Python-side column default, an expanding ``IN`` or a result
column whose type needs converting; such a statement is refused with
:class:`NotDirect` when first compiled, so the choice is made by the code that calls
these, not silently at run time. Rows support index access (``row[0]``) and unpacking.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Boolean, Integer, LargeBinary, String
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.sqltypes import NullType

Row = Sequence[Any]
Params = Mapping[str, Any]

_ROWCOUNT = re.compile(r"(\d+)$")

# Result types whose values asyncpg returns as SQLAlchemy would (no result processor).
_AS_THE_DRIVER_GIVES = (String, Integer, Boolean, LargeBinary, NullType)


class NotDirect(ValueError):
    """A statement that needs SQLAlchemy's execution (see the module's notes)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    compiled: SQLCompiler
    # (bind name, its processor or None), in the statement's positional order
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]


# (id of the statement, id of the schema map, parameter names) -> its compiled form.
# The statement and the map (an engine's, kept as long as the engine) are kept with it,
# so neither id is reused while cached.
_cache: dict[tuple[int, int, tuple[str, ...]], tuple[Executable, Any, _Compiled]] = {}
_CACHE_SIZE = 5_000


def _compile(conn: AsyncConnection, stmt: Executable, names: tuple[str, ...]) -> _Compiled:
    translate = conn.sync_connection.get_execution_options().get("schema_translate_map")  # type: ignore[union-attr]
    key = (id(stmt), id(translate), names)
    hit = _cache.get(key)
    if hit is not None:
        return hit[2]
    dialect = conn.dialect
    compiled = cast(Any, stmt).compile(
        dialect=dialect,
        column_keys=list(names),
        schema_translate_map=translate,
        render_schema_translate=bool(translate),
    )
    assert isinstance(compiled, SQLCompiler)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise NotDirect(f"a column default is computed in Python: {compiled.string[:80]}")
    if any(bind.expanding for bind in compiled.binds.values()):
        raise NotDirect(f"an expanding parameter: {compiled.string[:80]}")
    for column in compiled._result_columns:
        if not isinstance(column.type, _AS_THE_DRIVER_GIVES):
            raise NotDirect(f"result column {column.keyname!r} needs converting")
    processors = cast(dict[str, Callable[[Any], Any]], compiled._bind_processors)
    positions = compiled.positiontup or []
    done = _Compiled(
        compiled.string, compiled, tuple((name, processors.get(name)) for name in positions)
    )
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()  # statements and maps made per call: compiled again, not kept
    _cache[key] = (stmt, translate, done)
    return done


def _arguments(compiled: _Compiled, params: Params) -> list[Any]:
    values = compiled.compiled.construct_params(params, escape_names=False)
    return [
        values[name] if process is None else process(values[name])
        for name, process in compiled.binds
    ]


async def fetch(conn: AsyncConnection, stmt: Executable, params: Params | None = None) -> list[Row]:
    """The rows ``stmt`` returns, run with ``params`` in ``conn``'s transaction."""
    params = params or {}
    if conn.dialect.name != "postgresql":
        return list((await conn.execute(stmt, params)).all())
    return list(await _on_driver(conn, stmt, params, "fetch"))


async def execute(conn: AsyncConnection, stmt: Executable, params: Params | None = None) -> int:
    """Run ``stmt`` with ``params`` in ``conn``'s transaction; the rows it changed."""
    params = params or {}
    if conn.dialect.name != "postgresql":
        return int((await conn.execute(stmt, params)).rowcount)
    status = await _on_driver(conn, stmt, params, "execute")
    found = _ROWCOUNT.search(status or "")
    return int(found.group(1)) if found else 0


async def _on_driver(conn: AsyncConnection, stmt: Executable, params: Params, method: str) -> Any:
    """``stmt`` compiled, run by the asyncpg connection's ``method`` (``fetch``: its rows,
    ``execute``: its status) in the transaction SQLAlchemy holds."""
    compiled = _compile(conn, stmt, tuple(params))
    driver, adapter = await _driver(conn)
    args = _arguments(compiled, params)
    async with adapter._execute_mutex:
        await _begin(adapter)
        try:
            return await getattr(driver, method)(compiled.sql, *args)
        except Exception as error:
            await _raise_translated(conn, adapter, compiled.sql, error)
            raise


async def _driver(conn: AsyncConnection) -> tuple[Any, Any]:
    """The asyncpg connection under ``conn``, and SQLAlchemy's adapter around it."""
    # What ``Connection.connection`` returns when the connection is live (no I/O);
    # otherwise the public path, which revalidates it (or raises as execute would).
    fairy = conn.sync_connection._dbapi_connection  # type: ignore[union-attr]
    if fairy is None:
        fairy = await conn.get_raw_connection()
    adapter: Any = fairy.dbapi_connection
    return adapter.driver_connection, adapter


async def _begin(adapter: Any) -> None:
    # What SQLAlchemy's cursor does before its first statement in a transaction: the
    # transaction starts lazily, with the connection's isolation level (none at all on
    # an AUTOCOMMIT connection).
    if adapter._transaction is None:
        await adapter._start_transaction()


async def _raise_translated(
    conn: AsyncConnection, adapter: Any, sql: str, error: Exception
) -> None:
    """Raise ``error`` as SQLAlchemy's execute would: the driver's error translated to
    the DBAPI's, wrapped in SQLAlchemy's (parameters hidden); a lost connection
    invalidated first. An error that is not the driver's returns, to be re-raised."""
    dialect = conn.dialect
    dbapi_error_type = dialect.loaded_dbapi.Error
    try:
        adapter._handle_exception(error)
    except dbapi_error_type as dbapi_error:
        lost = dialect.is_disconnect(dbapi_error, adapter, None)
        if lost:
            await conn.invalidate(dbapi_error)
        raise DBAPIError.instance(
            sql,
            None,
            dbapi_error,
            dbapi_error_type,
            hide_parameters=True,
            dialect=dialect,
            connection_invalidated=lost,
        ) from error
    except Exception:
        return
