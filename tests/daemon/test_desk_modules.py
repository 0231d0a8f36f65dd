"""Tests for yizhan.daemon.desk.modules: every module is in the one table, and every effect
and job a module names exists."""

from __future__ import annotations

from typing import get_args

from yizhan.daemon.config import DEFAULT_ADDRESSES
from yizhan.daemon.desk.dispatch import RECEIVERS
from yizhan.daemon.desk.modules import DOCUMENT_MODULES, EFFECTS, MODULES
from yizhan.daemon.jobs.table import JOBS
from yizhan.routing.effects import Effect
from yizhan.routing.rules import DEFAULT_RULES


def test_every_module_address_has_its_class_and_every_recipient_kind_a_receiver() -> None:
    # A module address with no class would be answered "not available yet"; every address of
    # the default table has one, and the processor finds each by one lookup.
    assert set(MODULES) == set(DEFAULT_ADDRESSES) - {"cmd"}
    assert set(RECEIVERS) == {*MODULES, "person", "reply", "command"}


def test_every_flow_of_the_rules_opens_at_a_document_module() -> None:
    # 第二條: each flow's documents are opened at its module's address and its replies are
    # decided by that module; the library (ziliao) files and answers at its own address, and
    # its review flow (mine rules 一(六)) is the engine's alone.
    assert set(DOCUMENT_MODULES) == set(DEFAULT_RULES.flows) - {"ziliao"}
    assert set(MODULES) - set(DOCUMENT_MODULES) == {"ziliao"}


def test_every_effect_record_is_carried_out_by_exactly_one_module() -> None:
    # An effect record no module carries out would stop the transaction that ends its flow.
    declared = [effect for module in MODULES.values() for effect in module.effects]
    assert sorted(e.__name__ for e in declared) == sorted(e.__name__ for e in get_args(Effect))
    assert len(declared) == len(set(declared)) == len(EFFECTS)


def test_the_jobs_a_module_declares_are_scheduled() -> None:
    # A module names the scheduled jobs that serve it (bulletins lapse and are archived,
    # supervision is reported weekly); each is a job of the scheduler's table.
    names = {job.name for job in JOBS}
    declared = {job for module in MODULES.values() for job in module.jobs}
    assert declared <= names
    assert {"bulletin_expiry", "bulletin_cleanup", "supervision_report"} <= declared
