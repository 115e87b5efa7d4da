"""The SQL a PostgreSQL import runs for each chunk: its stage table and its one statement.

A chunk is COPYed into a temporary stage, then one statement merges it: each step (a CTE)
reads the previous one's RETURNING, with no re-joins. The usual statement inserts the
addresses `matched` did not find with a plain INSERT, as ON CONFLICT's speculative insertion
costs a third more per row; if another writer committed one of them meanwhile, the chunk runs
again through the fallback, every row through ON CONFLICT (app/supporters/import_writers.py).
"""

from __future__ import annotations

from app.supporters.csvrows import PROFILE_COLUMNS

# jsonb_build_object takes at most 100 arguments: 50 custom fields per call.
_PAIRS_PER_CALL = 50


def stage_table_sql(custom_names: list[str]) -> str:
    """CREATE the chunk's stage: the profile columns, the status, a text column per custom
    field (c0, c1 …, which `matched` folds into the jsonb the supporters table keeps)."""
    custom = "".join(f", c{i} text" for i in range(len(custom_names)))
    profile = ", ".join(f"{name} text" for name in PROFILE_COLUMNS)
    return (
        f'CREATE TEMP TABLE import_stage (email text COLLATE "C", {profile}, '
        f"status subscription_status{custom}) ON COMMIT DROP"
    )


def chunk_statements(custom_names: list[str], *, with_list: bool, with_tags: bool):
    """Return the chunk's usual statement and its ON CONFLICT fallback.

    Both take the parameters actor, detail, list_id and tag_ids, and return one row: how many
    supporters the chunk created and how many it updated.
    """
    grouping = [_HISTORY_SQL]
    if with_list or with_tags:
        grouping.append(_CHUNK_IDS_SQL)
    if with_list:
        grouping.append(_LIST_SQL)
    if with_tags:
        grouping.append(_TAGS_SQL)
    matched = _matched_sql(custom_names)
    usual = _statement([matched, _CREATED_SQL, _CHANGED_SQL, _UPSERTED_SQL, *grouping])
    return usual, _statement([matched, _UPSERT_SQL, *grouping])


# The file's values merged over a supporter's: non-empty values win, the first source stays.
_MERGED = {
    "first_name": "COALESCE({new}.first_name, {old}.first_name)",
    "last_name": "COALESCE({new}.last_name, {old}.last_name)",
    "postcode": "COALESCE({new}.postcode, {old}.postcode)",
    "country": "COALESCE({new}.country, {old}.country)",
    "language": "COALESCE({new}.language, {old}.language)",
    "source": "COALESCE({old}.source, {new}.source)",
    "custom_fields": "{old}.custom_fields || {new}.custom_fields",
}


def _changes(new: str, old: str) -> str:
    merged = ", ".join(expr.format(new=new, old=old) for expr in _MERGED.values())
    current = ", ".join(f"{old}.{name}" for name in _MERGED)
    return f"({current}) IS DISTINCT FROM ({merged})"


def _assignments(new: str, old: str) -> str:
    return ", ".join(f"{name} = {expr.format(new=new, old=old)}" for name, expr in _MERGED.items())


def _custom_fields_sql(names: list[str]) -> str:
    """SQL for the jsonb of a staged row's non-empty custom fields."""
    if not names:
        return "'{}'::jsonb"
    pairs = [f"'{name}', c{i}" for i, name in enumerate(names)]
    calls = [
        "jsonb_build_object(" + ", ".join(pairs[i : i + _PAIRS_PER_CALL]) + ")"
        for i in range(0, len(pairs), _PAIRS_PER_CALL)
    ]
    return "jsonb_strip_nulls(" + " || ".join(calls) + ")"


# `matched` looks each address up once, read-only: rows that would change nothing are not sent
# through ON CONFLICT at all (which locks and WAL-logs every row it meets), so a re-import of an
# unchanged file writes nothing. LATERAL … LIMIT 1 keeps that lookup an index probe per row
# even when the planner's statistics for a fast-growing table are stale (it would otherwise
# hash the whole supporters table once per chunk).
def _matched_sql(custom_names: list[str]) -> str:
    return f"""
matched AS MATERIALIZED (
    SELECT s.*, cur.id AS existing_id,
        cur.id IS NULL OR {_changes("s", "cur")} AS needs_write
    FROM (
        SELECT email, {", ".join(PROFILE_COLUMNS)}, status,
            {_custom_fields_sql(custom_names)} AS custom_fields
        FROM import_stage
    ) s
    LEFT JOIN LATERAL (
        SELECT * FROM supporters sp WHERE sp.email = s.email LIMIT 1
    ) cur ON true
)"""


# Existing supporters keep their status whatever the file says (an import never resubscribes
# anyone). The update repeats the change test in case a row changed since `matched` read it, so
# updated_at moves only when a value does. `xmax = 0` is true only for rows this statement
# inserted. Sorting by email locks rows in one order, so imports running at once cannot
# deadlock on each other; byte order (COLLATE "C") is any such order, and cheaper to sort by.
# The opt-out an erased address's hash remembers (app/supporters/privacy.py), so it comes back
# suppressed. Hashing every address costs more than the rest of the lookup, so it is done only
# when some address has been erased at all: the EXISTS is an InitPlan, run once per statement.
_ERASED_STATUS_SQL = """CASE WHEN (SELECT EXISTS (SELECT FROM erased_emails)) THEN (
            SELECT e.status FROM erased_emails e
            WHERE e.email_hash = encode(sha256(convert_to(m.email, 'UTF8')), 'hex')
        ) END"""

_COLUMNS = """(email, first_name, last_name, postcode, country, language, source,
        custom_fields, status, soft_bounce_count, created_at, updated_at)"""
_VALUES = f"""m.email, m.first_name, m.last_name, m.postcode, m.country, m.language, m.source,
        m.custom_fields, COALESCE({_ERASED_STATUS_SQL}, m.status), 0, now(), now()"""
_ON_CONFLICT = f"""ON CONFLICT (email) DO UPDATE SET
        {_assignments("EXCLUDED", "sp")},
        updated_at = EXCLUDED.updated_at
    WHERE {_changes("EXCLUDED", "sp")}
    RETURNING sp.id, sp.status, (xmax = 0) AS inserted"""


def _insert(name: str, rows: str, tail: str) -> str:
    """A step inserting the `matched` rows chosen by `rows`, in address order, so two writers
    lock them in one order and cannot deadlock; `tail` is its ON CONFLICT and RETURNING."""
    return f"""
{name} AS (
    INSERT INTO supporters AS sp {_COLUMNS}
    SELECT {_VALUES}
    FROM matched m
    WHERE {rows}
    ORDER BY m.email COLLATE "C"
    {tail}
)"""


# The addresses `matched` did not find.
_CREATED_SQL = _insert("created", "m.existing_id IS NULL", "RETURNING sp.id, sp.status")
# The supporters `matched` found with something to change (or erased since: inserted again).
_CHANGED_SQL = _insert("changed", "m.existing_id IS NOT NULL AND m.needs_write", _ON_CONFLICT)

_UPSERTED_SQL = """
upserted AS (
    SELECT id, status, true AS inserted FROM created
    UNION ALL
    SELECT id, status, inserted FROM changed
)"""

# Every row that needs writing through ON CONFLICT: the statement a chunk falls back to.
_UPSERT_SQL = _insert("upserted", "m.needs_write", _ON_CONFLICT)

_HISTORY_SQL = """
history AS (
    INSERT INTO subscription_changes (supporter_id, old_status, new_status, channel, actor,
        detail, changed_at)
    SELECT id, NULL, status, 'import', %(actor)s,
        CASE WHEN status <> 'subscribed' THEN %(detail)s END, now()
    FROM upserted WHERE inserted
)"""

# Every supporter of the chunk: the ones just inserted and the ones that already existed.
_CHUNK_IDS_SQL = """
chunk_ids AS (
    SELECT id FROM upserted WHERE inserted
    UNION ALL
    SELECT existing_id FROM matched WHERE existing_id IS NOT NULL
)"""

_LIST_SQL = """
listed AS (
    INSERT INTO list_memberships (list_id, supporter_id, created_at)
    SELECT %(list_id)s, id, now() FROM chunk_ids ORDER BY id
    ON CONFLICT DO NOTHING
)"""

_TAGS_SQL = """
tagged AS (
    INSERT INTO supporter_tags (tag_id, supporter_id)
    SELECT t.id, c.id FROM chunk_ids c CROSS JOIN unnest(%(tag_ids)s::bigint[]) AS t(id)
    ORDER BY c.id
    ON CONFLICT DO NOTHING
)"""

_COUNT_SQL = """
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
"""


def _statement(steps: list[str]) -> str:
    return "WITH " + ",\n".join(steps) + _COUNT_SQL
