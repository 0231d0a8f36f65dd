"""Tests for yizhan.mailstore.documents: document numbers and the trail kept in the audit log."""

from __future__ import annotations

import datetime as dt
import threading

from yizhan.daemon.context import Context
from yizhan.mailstore.documents import allocate_number, create_document, find_document


def test_concurrent_sign_offs_get_consecutive_numbers(ctx: Context) -> None:
    # Eight leaders sign off at the same moment, many times: no number is skipped or repeated.
    got: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def sign_off() -> None:
        try:
            for _ in range(15):
                with ctx.sessions.begin() as session:
                    number = allocate_number(session, "遼檢辦", 2026)
                with lock:
                    got.append(number)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sign_off) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got) == list(range(1, 121))


def test_rolled_back_number_is_given_again(ctx: Context) -> None:
    # A sign-off whose transaction fails leaves no gap: the next one gets the same number.
    class Boom(Exception):
        pass

    try:
        with ctx.sessions.begin() as session:
            assert allocate_number(session, "遼檢辦", 2026) == 1
            raise Boom
    except Boom:
        pass
    with ctx.sessions.begin() as session:
        assert allocate_number(session, "遼檢辦", 2026) == 1
        assert allocate_number(session, "遼檢辦", 2027) == 1
        assert allocate_number(session, "遼檢監", 2026) == 1


def test_documents_are_found_by_id_or_number(bureau: Context) -> None:
    # STATUS accepts "12", "#12" or the document number.
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    with bureau.sessions.begin() as session:
        doc = create_document(
            session,
            kind="fawen",
            title="t",
            author="songjia",
            unit="inspection",
            urgency=None,
            fields={},
            source_inbound=None,
            now=now,
        )
        doc.number = "遼檢監〔2026〕3號"
        doc_id = doc.id
    with bureau.sessions() as session:
        for ref in (str(doc_id), f"#{doc_id}", "遼檢監〔2026〕3號", "遼檢監【2026】03號"):
            found = find_document(session, ref)
            assert found is not None and found.id == doc_id
        assert find_document(session, "遼檢監〔2026〕4號") is None
