"""Tests for routing.addresses: classifying RCPT addresses at the OA domain."""

from __future__ import annotations

import pytest

from yizhan.daemon.config import DEFAULT_ADDRESSES
from yizhan.routing.addresses import AddressTable, Recipient, Refusal, classify
from yizhan.routing.directory import Directory, PersonInfo, UnitInfo

DOMAIN = "oa.example"


def directory() -> Directory:
    units = [UnitInfo(id="bureau", name="局", kind="bureau")]
    people = [
        PersonInfo(
            account="wangfang",
            name="王芳",
            unit="bureau",
            roles=frozenset({"clerk"}),
            email="wangfang@bureau.example",
        ),
        PersonInfo(account="gone", name="走了", unit="bureau", roles=frozenset(), state="revoked"),
    ]
    return Directory.build(units, people)


def table() -> AddressTable:
    return AddressTable(DOMAIN, DEFAULT_ADDRESSES)


@pytest.mark.parametrize(
    ("address", "module"),
    [
        ("fawen@oa.example", "fawen"),
        ("outgoing@oa.example", "fawen"),
        ("FaWen@OA.Example", "fawen"),
        ("shouwen@oa.example", "shouwen"),
        ("incoming@oa.example", "shouwen"),
        ("leave@oa.example", "xiujia"),
        ("biangeng@oa.example", "biangeng"),
    ],
)
def test_kind_addresses_and_aliases(address: str, module: str) -> None:
    # Each kind is reachable by its pinyin name and its English alias, in any case.
    assert table().classify(address, directory()) == Recipient(kind="module", module=module)


def test_command_address() -> None:
    # cmd@ is for commands, not a module.
    assert table().classify("CMD@oa.example", directory()) == Recipient(kind="command")


def test_reply_token_keeps_its_case() -> None:
    # r+TOKEN@ is a reply; the token is checked later against its HMAC, so its case matters.
    found = table().classify("R+AbC-1_2.x=@oa.example", directory())
    assert found == Recipient(kind="reply", token="AbC-1_2.x=")


@pytest.mark.parametrize("local", ["r+", "r+bad/token", "r+" + "a" * 201, "r+a b"])
def test_malformed_reply_token_is_refused_with_advice(local: str) -> None:
    # A broken reply address says how to reply instead of "no such person".
    found = table().classify(f"{local}@oa.example", directory())
    assert isinstance(found, Refusal)
    assert str(found).startswith("550 5.1.1 ")
    assert "reply address" in found.reason


def test_token_of_200_characters_is_a_reply() -> None:
    # The longest token allowed is 200 characters.
    found = table().classify("r+" + "a" * 200 + "@oa.example", directory())
    assert isinstance(found, Recipient) and found.kind == "reply"


def test_person_by_account() -> None:
    # account@domain of an active person is that person, in any case.
    found = table().classify("WangFang@oa.example", directory())
    assert found == Recipient(kind="person", account="wangfang")


def test_revoked_person_is_refused_with_the_state() -> None:
    # A person who left is named as such, not as unknown.
    found = table().classify("gone@oa.example", directory())
    assert isinstance(found, Refusal)
    assert str(found) == "550 5.2.1 <gone@oa.example>: the account of gone is revoked"


def test_outside_domain_is_refused() -> None:
    # Yizhan is no relay: a person's own mailbox is outside the OA domain.
    found = table().classify("wangfang@bureau.example", directory())
    assert isinstance(found, Refusal)
    assert (found.code, found.status) == (550, "5.1.2")
    assert str(found).endswith("Yizhan only accepts mail for @oa.example")


def test_subdomain_is_outside() -> None:
    # A subdomain of the OA domain is another domain.
    found = table().classify("fawen@mail.oa.example", directory())
    assert isinstance(found, Refusal) and found.status == "5.1.2"


def test_unknown_local_part_lists_the_modules() -> None:
    # The refusal tells the sender which addresses exist.
    found = table().classify("nobody@oa.example", directory())
    assert isinstance(found, Refusal)
    text = str(found)
    assert text.startswith("550 5.1.1 <nobody@oa.example>: no such module or person; modules are ")
    assert "fawen@, shouwen@, qianbao@" in text and text.endswith("cmd@")


def test_address_without_domain() -> None:
    # A bare local part cannot be classified.
    found = table().classify("postmaster", directory())
    assert isinstance(found, Refusal) and found.status == "5.1.3"


def test_configured_local_parts() -> None:
    # Local parts come from the config; the kind key stays canonical.
    custom = AddressTable(DOMAIN, {"fawen": ("send-doc",), "cmd": ("commands",)})
    assert custom.classify("send-doc@oa.example", directory()) == Recipient(
        kind="module", module="fawen"
    )
    assert custom.classify("commands@oa.example", directory()) == Recipient(kind="command")
    assert isinstance(custom.classify("fawen@oa.example", directory()), Refusal)


def test_classify_function_matches_the_table() -> None:
    # The one-shot function gives the same answers as a table built once.
    for address in ("fawen@oa.example", "nobody@oa.example", "r+t@oa.example"):
        assert classify(
            address, domain=DOMAIN, addresses=DEFAULT_ADDRESSES, directory=directory()
        ) == table().classify(address, directory())
