"""Set-based writes of counter rows, for the rollups: one statement however many rows.

Plain functions over a SQLAlchemy connection, on PostgreSQL (arrays, unnest) and SQLite alike.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import BigInteger, any_, bindparam, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def add_counts(
    connection,
    dialect,
    model,
    keys: tuple[str, ...],
    counters,
    deltas: Counter,
    *,
    conflict_keys: tuple[str, ...] | None = None,
) -> None:
    """Add the deltas to the model's rows, creating them: one statement for all of them.

    `conflict_keys`: the primary key, when `keys` carries more columns than it (a row's owner).
    """
    rows: dict[tuple, dict] = {}
    for (*key, name), delta in deltas.items():
        if delta:
            row = rows.setdefault(tuple(key), {**dict(zip(keys, key, strict=True))})
            row[name] = row.get(name, 0) + delta
    if not rows:
        return
    # In key order: two transactions adding to the same rows then lock them in the same order.
    values = [dict.fromkeys(counters, 0) | rows[key] for key in sorted(rows)]
    table = model.__table__
    statement = insert_for(dialect)(table).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in conflict_keys or keys],
        set_={name: table.c[name] + statement.excluded[name] for name in counters},
    )
    connection.execute(statement)


def update_rows(connection, table, keys, columns, rows: list[dict]) -> None:
    """Write each row's columns to the row with its keys: one statement on PostgreSQL."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(
            update(table)
            .where(*(table.c[k] == bindparam(f"b_{k}") for k in keys))
            .values({c: bindparam(f"b_{c}", type_=table.c[c].type) for c in columns}),
            [{f"b_{name}": value for name, value in row.items()} for row in rows],
        )
        return
    names = (*keys, *columns)
    arrays = ", ".join(
        f"CAST(:{n} AS {table.c[n].type.compile(connection.dialect)}[])" for n in names
    )
    connection.execute(
        text(
            f"UPDATE {table.name} AS t SET "
            + ", ".join(f"{c} = v.{c}" for c in columns)
            + f" FROM unnest({arrays}) AS v({', '.join(names)}) WHERE "
            + " AND ".join(f"t.{k} = v.{k}" for k in keys)
        ),
        {n: [row[n] for row in rows] for n in names},
    )


def among(column, values: list[int], dialect: str):
    """SQL: column is one of the values; one array parameter on PostgreSQL, not thousands."""
    if dialect == "postgresql":
        return column == any_(bindparam("among", values, type_=ARRAY(BigInteger)))
    return column.in_(values)


def insert_for(dialect: str):
    return pg_insert if dialect == "postgresql" else sqlite_insert
