"""Tests of yizhan.mailstore.maildir: Maildir delivery, exactly once per unique key."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from yizhan.mailstore import maildir

MESSAGE = (
    b"From: =?utf-8?b?546L6Iqz?= <wangfang@oa.example>\r\n"
    b"To: lijun@bureau.example\r\n"
    b"Subject: test\r\n"
    b"Message-ID: <m1@oa.example>\r\n"
    b"\r\n"
    b"\xe6\xad\xa3\xe6\x96\x87\r\n"
)


def test_delivers_into_new_with_return_path_and_identical_bytes(tmp_path: Path) -> None:
    # A message lands in <root>/<account>/new/, Return-Path first, then the bytes unchanged
    # (a signature over them must stay valid); nothing is left in tmp/.
    root = tmp_path / "maildirs"
    path = maildir.deliver(root, "lijun", MESSAGE, "17-abc", mail_from="wangfang@oa.example")
    assert path.parent == root / "lijun" / "new"
    assert path.read_bytes() == b"Return-Path: <wangfang@oa.example>\r\n" + MESSAGE
    assert list((root / "lijun" / "tmp").iterdir()) == []


def test_directories_are_private_as_maildir_plus_plus_expects(tmp_path: Path) -> None:
    # Dovecot reads Maildir++ directories of mode 0700 and files of 0600; mail is private.
    root = tmp_path / "maildirs"
    path = maildir.deliver(root, "lijun", MESSAGE, "1", mail_from="")
    for sub in ("tmp", "new", "cur"):
        assert stat.S_IMODE(os.stat(root / "lijun" / sub).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / "lijun").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_null_sender_gets_empty_return_path(tmp_path: Path) -> None:
    # Delivery reports come from the null sender; Return-Path: <> tells clients not to answer.
    path = maildir.deliver(tmp_path, "lijun", MESSAGE, "2", mail_from="")
    assert path.read_bytes().startswith(b"Return-Path: <>\r\n")


def test_repeat_delivery_writes_nothing(tmp_path: Path) -> None:
    # After a crash between delivering and marking sent, the worker delivers again: the first
    # copy is found and no second one appears.
    first = maildir.deliver(tmp_path, "lijun", MESSAGE, "3-x", mail_from="a@b.example")
    again = maildir.deliver(tmp_path, "lijun", MESSAGE, "3-x", mail_from="a@b.example")
    assert again == first
    assert len(list((tmp_path / "lijun" / "new").iterdir())) == 1


def test_repeat_delivery_finds_copy_a_client_moved_to_cur(tmp_path: Path) -> None:
    # A mail client that has seen the message moves it to cur/ and appends ":2,S"; the repeat
    # delivery must recognise it there too.
    first = maildir.deliver(tmp_path, "lijun", MESSAGE, "4", mail_from="a@b.example")
    seen = tmp_path / "lijun" / "cur" / (first.name + ":2,S")
    first.rename(seen)
    again = maildir.deliver(tmp_path, "lijun", MESSAGE, "4", mail_from="a@b.example")
    assert again == seen
    assert list((tmp_path / "lijun" / "new").iterdir()) == []
    # A different key whose name merely starts the same is another message.
    other = maildir.deliver(tmp_path, "lijun", MESSAGE, "40", mail_from="a@b.example")
    assert other.parent.name == "new"


def test_lf_message_gets_lf_return_path(tmp_path: Path) -> None:
    # A message stored with bare LF line ends keeps them; the added line follows suit.
    data = MESSAGE.replace(b"\r\n", b"\n")
    path = maildir.deliver(tmp_path, "lijun", data, "5", mail_from="a@b.example")
    assert path.read_bytes() == b"Return-Path: <a@b.example>\n" + data


@pytest.mark.parametrize(
    ("account", "unique"),
    [("../etc", "1"), (".hidden", "1"), ("", "1"), ("lijun", "a/b"), ("lijun", "x:2,S")],
)
def test_refuses_names_that_escape_or_confuse_the_maildir(
    tmp_path: Path, account: str, unique: str
) -> None:
    # An account or key must not lead outside the root, nor carry Maildir's flag separator.
    with pytest.raises(ValueError):
        maildir.deliver(tmp_path, account, MESSAGE, unique, mail_from="")


def _letter(account: str, unique: str, body: bytes = b"shared body\r\n") -> maildir.Letter:
    return maildir.Letter(
        account=account,
        parts=(b"To: " + account.encode() + b"@oa.example\r\n\r\n", body),
        unique=unique,
        mail_from="cmd@oa.example",
    )


def test_deliver_many_puts_each_letter_in_its_maildir_once(tmp_path: Path) -> None:
    # A round of a distribution: every clerk gets the head and shared body after Return-Path;
    # delivered again (the round was not recorded before a crash), nothing more is written.
    root = tmp_path / "maildirs"
    letters = [_letter(f"clerk{i}", f"{i}-x") for i in range(20)] + [_letter("clerk0", "99-y")]
    paths = maildir.deliver_many(root, letters)
    for letter, path in zip(letters, paths, strict=True):
        assert isinstance(path, Path) and path.parent == root / letter.account / "new"
        assert path.read_bytes() == b"Return-Path: <cmd@oa.example>\r\n" + b"".join(letter.parts)
    assert len(os.listdir(root / "clerk0" / "new")) == 2
    assert maildir.deliver_many(root, letters) == paths
    assert all(len(os.listdir(root / f"clerk{i}" / "new")) == 1 for i in range(1, 20))
    assert all(os.listdir(root / f"clerk{i}" / "tmp") == [] for i in range(20))


def test_deliver_many_reports_a_broken_maildir_and_delivers_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "maildirs"
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "new").write_bytes(b"not a directory")
    ok, bad = maildir.deliver_many(root, [_letter("fine", "1-a"), _letter("broken", "2-b")])
    assert isinstance(ok, Path) and ok.exists()
    assert isinstance(bad, OSError)


def test_deliver_many_finds_a_copy_a_client_moved_to_cur_when_it_may_exist(
    tmp_path: Path,
) -> None:
    # A delivery tried before (or whose claim ended unrecorded) looks into cur/ too: the clerk's
    # mail client has read the first copy, and no second one is written.
    root = tmp_path / "maildirs"
    (first,) = maildir.deliver_many(root, [_letter("clerk", "5-z")])
    assert isinstance(first, Path)
    seen = root / "clerk" / "cur" / (first.name + ":2,S")
    first.rename(seen)
    (again,) = maildir.deliver_many(root, [_letter("clerk", "5-z")])
    assert again == seen
    assert os.listdir(root / "clerk" / "new") == []


def test_deliver_many_into_a_maildir_on_another_filesystem(tmp_path: Path) -> None:
    # An administrator has moved one person's Maildir to another disk and left a symbolic
    # link: that person's letters of a round land there, like everyone else's in theirs, and
    # a repeated round finds them (a round synced by filesystem, as once tried, must not
    # leave such a Maildir out).
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or elsewhere.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem to put a Maildir on")
    root = tmp_path / "maildirs"
    root.mkdir()
    moved = elsewhere / f"yizhan-test-{os.getpid()}-{tmp_path.name}"
    try:
        moved.mkdir()
        (root / "moved").symlink_to(moved)
        letters = [_letter("moved", "1-a"), _letter("stays", "2-b"), _letter("moved", "3-c")]
        paths = maildir.deliver_many(root, letters)
        for letter, path in zip(letters, paths, strict=True):
            assert isinstance(path, Path) and path.parent == root / letter.account / "new"
            assert path.read_bytes() == b"Return-Path: <cmd@oa.example>\r\n" + b"".join(
                letter.parts
            )
        assert len(os.listdir(moved / "new")) == 2 and os.listdir(moved / "tmp") == []
        assert maildir.deliver_many(root, letters) == paths
    finally:
        shutil.rmtree(moved, ignore_errors=True)
