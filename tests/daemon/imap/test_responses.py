"""IMAP response parsing, on literal bytes as aioimaplib hands them over (RFC 3501, 4315)."""

from __future__ import annotations

from yizhan.daemon.imap.responses import (
    AppendUid,
    CopyUid,
    appenduid,
    copyuid,
    exists,
    fetched_literals,
    listed_mailboxes,
    message_id_of,
    parse_uid_set,
    search_uids,
    uid_set,
    uidvalidity,
)


def test_appenduid_from_the_tagged_reply() -> None:
    # RFC 4315's example reply to APPEND, as Dovecot sends it.
    lines = [b"[APPENDUID 38505 3955] APPEND completed"]
    assert appenduid(lines) == AppendUid(uidvalidity=38505, uid=3955)
    assert appenduid([b"APPEND completed"]) is None


def test_copyuid_of_a_move() -> None:
    # RFC 6851: MOVE sends COPYUID untagged, then the expunges.
    lines = [b"OK [COPYUID 432432 42:43,45 1000:1002] Moved", b"2 EXPUNGE", b"Done"]
    found = copyuid(lines)
    assert found == CopyUid(uidvalidity=432432, uids={42: 1000, 43: 1001, 45: 1002})


def test_uidvalidity_and_size_of_a_select() -> None:
    lines = [
        b"FLAGS (\\Seen)",
        b"172 EXISTS",
        b"OK [UIDVALIDITY 3857529045] UIDs valid",
        b"[READ-WRITE] ok",
    ]
    assert uidvalidity(lines) == 3857529045
    assert exists(lines) == 172
    assert exists([b"[READ-WRITE] ok"]) is None


def test_search_with_and_without_the_response_name() -> None:
    # aioimaplib strips "SEARCH" from a search it ran concurrently; a plain reply keeps it.
    assert search_uids([b"SEARCH 2 84 882", b"Search completed (0.001 secs)."]) == [2, 84, 882]
    assert search_uids([b"6", b"Search completed."]) == [6]
    assert search_uids([b"SEARCH", b"Search completed."]) == []


def test_list_and_lsub_lines_decoded() -> None:
    # The folders of DESIGN.md as Dovecot lists them (modified UTF-7, "/" separator).
    lines = [
        b'(\\Noselect \\HasChildren) "/" &UWxlhw-',
        b'(\\HasNoChildren) "/" "&UWxlhw-/&X4WPpg-"',
        b'LSUB () "/" &UWxlhw-/&XfKPpg-',
        b'(\\HasNoChildren) "/" INBOX',
        b"List completed (0.001 + 0.000 secs).",
    ]
    found = listed_mailboxes(lines)
    assert list(found) == ["公文", "公文/待辦", "公文/已辦", "INBOX"]
    assert found["公文"] == ("\\Noselect", "\\HasChildren")


def test_fetched_literals_by_uid() -> None:
    lines = [
        b"1 FETCH (UID 2 BODY[HEADER.FIELDS (MESSAGE-ID)] {22}",
        bytearray(b"Message-ID: <m1@x>\r\n\r\n"),
        b")",
        b"2 FETCH (FLAGS (\\Seen) UID 7 BODY[] {5}",
        bytearray(b"Hi\r\n\r"),
        b")",
        b"Fetch completed.",
    ]
    found = fetched_literals(lines)
    assert found == {2: b"Message-ID: <m1@x>\r\n\r\n", 7: b"Hi\r\n\r"}
    assert message_id_of(found[2]) == "<m1@x>"
    assert message_id_of(b"Message-Id:\r\n <folded@x>\r\n\r\n") == "<folded@x>"
    assert message_id_of(b"Subject: none\r\n\r\n") is None


def test_uid_sets() -> None:
    assert parse_uid_set(b"3:5,9,12:11") == [3, 4, 5, 9, 11, 12]
    assert uid_set([9, 3, 4, 5, 11, 12]) == "3:5,9,11:12"
    assert uid_set([7]) == "7"
