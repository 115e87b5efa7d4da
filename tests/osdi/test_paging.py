"""Pages by number: the block counters give exactly what OFFSET would, after any change."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, insert, select, text
from werkzeug.datastructures import MultiDict

from app.extensions import db
from app.osdi.errors import OsdiError
from app.osdi.models import BLOCK_SIZE, PeopleBlock
from app.osdi.paging import PageRequest, offset_page, page_request, people_page
from app.supporters.models import Supporter
from tests.factories import make_supporter, make_supporters


def by_offset(wanted: PageRequest) -> list[int]:
    stmt = select(Supporter.id).order_by(Supporter.id)
    return offset_page(stmt, wanted)[0]


def assert_pages_match_offset(pages) -> None:
    total = db.session.scalar(select(func.count()).select_from(Supporter))
    for page in pages:
        wanted = PageRequest(page, 25)
        found, counted = people_page(wanted)
        assert [s.id for s in found] == by_offset(wanted), page
        assert counted == total


def test_counters_follow_inserts_deletes_and_gaps():
    ids = make_supporters(2600)  # three blocks' worth
    counted = db.session.scalar(select(func.sum(PeopleBlock.people)))
    assert counted == 2600
    pages = [1, 2, 40, 41, 42, 80, 104, 105, 200]
    assert_pages_match_offset(pages)
    # Delete a run across a block boundary, and a scattering: later pages shift like OFFSET's.
    boundary = next(i for i in ids if i % BLOCK_SIZE == 0)
    gone = set(ids[100:130]) | {i for i in ids if boundary - 20 <= i < boundary + 700} | {ids[-1]}
    db.session.execute(delete(Supporter).where(Supporter.id.in_(gone)))
    assert_pages_match_offset(pages)
    make_supporters(30, prefix="late")  # new ids at the end
    make_supporter("one.more@example.org")  # the ORM path too
    assert_pages_match_offset([*pages, 68, 69])


def test_an_id_inserted_out_of_order_is_counted_in_its_block():
    ids = make_supporters(60)
    db.session.execute(delete(Supporter).where(Supporter.id == ids[10]))
    db.session.execute(insert(Supporter), [{"id": ids[10], "email": "back@example.org"}])
    assert_pages_match_offset([1, 2, 3])


def test_truncate_empties_the_counters():
    make_supporters(5)
    db.session.execute(text("TRUNCATE supporters CASCADE"))
    assert db.session.scalar(select(func.count()).select_from(PeopleBlock)) == 0
    assert people_page(PageRequest(1, 25)) == ([], 0)


def test_past_the_end_is_empty_with_the_total():
    make_supporters(30)
    assert people_page(PageRequest(2, 25))[1] == 30
    assert people_page(PageRequest(3, 25)) == ([], 30)
    assert people_page(PageRequest(10**15, 25)) == ([], 30)


def test_page_request_caps_per_page_and_refuses_nonsense():
    assert page_request(MultiDict()) == PageRequest(1, 25)
    assert page_request(MultiDict({"page": "3", "per_page": "500"})) == PageRequest(3, 25)
    assert page_request(MultiDict({"page": "", "per_page": "10"})) == PageRequest(1, 10)
    for args in ({"page": "0"}, {"page": "x"}, {"per_page": "-5"}, {"page": "9" * 30}):
        with pytest.raises(OsdiError):
            page_request(MultiDict(args))
