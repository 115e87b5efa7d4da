"""One pagination style for every API list: `?page=&page_size=`, answered in a body envelope.

Every list endpoint answers `{"items": [...], "pagination": {"page", "page_size", "total",
"pages"}}`; `page_size` is at most 500 so a single request stays cheap.
"""

from __future__ import annotations

import math
from functools import cache

from marshmallow import fields, validate
from sqlalchemy import Select, func, select

from app.api.schemas import ClarionSchema as Schema
from app.extensions import db

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
# More pages than any list can fill, and small enough that the OFFSET fits a bigint.
MAX_PAGE = 10_000_000


class PageArgsSchema(Schema):
    page = fields.Int(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"From 1 to {MAX_PAGE}."},
    )
    page_size = fields.Int(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Items per page, 1-{MAX_PAGE_SIZE}."},
    )


class PaginationSchema(Schema):
    page = fields.Int()
    page_size = fields.Int()
    total = fields.Int(metadata={"description": "Items matching, over all pages."})
    pages = fields.Int()


@cache
def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """Return the envelope schema for a page of `item_schema` items (one class per item type)."""
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return type(
        name,
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema)),
            "pagination": fields.Nested(PaginationSchema),
        },
    )


def paginate(stmt: Select, args: dict, *, scalars: bool = True) -> dict:
    """Run `stmt` for the requested page and return the envelope (items still unserialised)."""
    page, page_size = args.get("page", 1), args.get("page_size", DEFAULT_PAGE_SIZE)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    paged = stmt.limit(page_size).offset((page - 1) * page_size)
    items = list(db.session.scalars(paged)) if scalars else list(db.session.execute(paged))
    return {
        "items": items,
        "pagination": {
            "page": page,
            "page_size": page_size,
            "total": total,
            "pages": math.ceil(total / page_size) if total else 0,
        },
    }
