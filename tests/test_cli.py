"""Tests for the `yizhan` command line, run as a program the way an administrator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yizhan.cli.setup import DEMO_PASSWORD


def yizhan(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `yizhan ARGS` with the test's config; never raises on a non-zero exit."""
    env = {**os.environ, "YIZHAN_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "yizhan", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    """A yizhan.toml for a fresh instance in tmp_path, without a secret."""
    path = tmp_path / "yizhan.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[database]\nurl = "{database_url}"\n'
        '[smtp]\nlisten = "127.0.0.1:0"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def initialised(config_file: Path) -> Path:
    """An instance after `yizhan init`."""
    result = yizhan(config_file, "init")
    assert result.returncode == 0, result.stderr
    return config_file


def test_init_creates_secret_database_and_certificate(config_file: Path, tmp_path: Path) -> None:
    # A newcomer's first command: afterwards the instance has a secret, a schema and TLS.
    result = yizhan(config_file, "init")
    assert result.returncode == 0, result.stderr
    var = tmp_path / "var"
    assert (var / "secret").stat().st_mode & 0o777 == 0o600
    assert (var / "tls" / "cert.pem").exists()
    assert yizhan(config_file, "check").returncode == 0
    again = yizhan(config_file, "init")
    assert again.returncode == 0, again.stderr
    assert "new secret" not in again.stdout


def test_verbs_before_init_explain_what_to_do(config_file: Path) -> None:
    # Every verb exits non-zero with a one-line reason on failure.
    result = yizhan(config_file, "user", "list")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "yizhan init" in result.stderr


def test_demo_loads_the_bureau_and_says_how_to_log_in(initialised: Path) -> None:
    # `yizhan demo` loads about thirty people and prints the login.
    result = yizhan(initialised, "demo")
    assert result.returncode == 0, result.stderr
    assert DEMO_PASSWORD in result.stdout and "wangfang" in result.stdout
    people = json.loads(yizhan(initialised, "user", "list", "--json").stdout)
    assert 25 <= len(people) <= 40
    units = {p["unit"] for p in people}
    assert {"office", "it", "hr"} <= units
    wangfang = next(p for p in people if p["account"] == "wangfang")
    assert set(wangfang) == {"account", "name", "unit", "roles", "email", "state"}
    assert wangfang["roles"] == ["clerk"] and wangfang["state"] == "active"
    assert any("seal_custodian" in p["roles"] for p in people)
    seals = json.loads(yizhan(initialised, "seal", "list", "--json").stdout)
    assert [(x["unit"], x["state"], x["custodian"]) for x in seals] == [
        ("bureau", "active", "zhoujing")
    ]
    exported = yizhan(initialised, "seal", "export", "bureau")
    assert exported.stdout.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    not_custodian = yizhan(initialised, "seal", "create", "office", "--custodian", "wangfang")
    assert not_custodian.returncode != 0 and "seal_custodian" in not_custodian.stderr
    checked = yizhan(initialised, "check")
    assert checked.returncode == 0, checked.stderr
    assert "rules OK" in checked.stdout
    # 第五條: each unit has a leader in charge and a clerk; the demo's departments have no
    # unit_leader, and every unit has its clerk.
    assert "unit inspection has no active unit_leader" in checked.stdout
    assert "unit office has no active unit_leader" not in checked.stdout
    assert "no active clerk" not in checked.stdout
    missing = yizhan(initialised, "doc", "show", "遼檢辦〔2026〕999號", "--json")
    assert missing.returncode != 0 and "no document" in missing.stderr


def test_user_lifecycle(initialised: Path) -> None:
    # IT adds a person, sets a final password from stdin, suspends, then revokes them.
    assert yizhan(initialised, "demo").returncode == 0
    added = yizhan(
        initialised,
        "user",
        "add",
        "zhangsan",
        "--name",
        "張三",
        "--unit",
        "辦公室",
        "--role",
        "staff",
        "--email",
        "zhangsan@bureau.example",
    )
    assert added.returncode == 0, added.stderr
    temporary = added.stdout.strip()
    assert len(temporary) >= 8
    short = yizhan(initialised, "user", "passwd", "zhangsan", stdin="abc\n")
    assert short.returncode != 0 and "at least 8" in short.stderr
    ok = yizhan(initialised, "user", "passwd", "zhangsan", stdin="Zs-password-2026\n")
    assert ok.returncode == 0, ok.stderr
    assert yizhan(initialised, "user", "suspend", "zhangsan").returncode == 0
    assert yizhan(initialised, "user", "revoke", "zhangsan").returncode == 0
    people = json.loads(yizhan(initialised, "user", "list", "--json").stdout)
    zhangsan = next(p for p in people if p["account"] == "zhangsan")
    assert zhangsan["unit"] == "office" and zhangsan["state"] == "revoked"
    duplicate = yizhan(
        initialised,
        "user",
        "add",
        "zhangsan",
        "--name",
        "張三",
        "--unit",
        "office",
        "--role",
        "staff",
    )
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    unknown = yizhan(initialised, "user", "suspend", "nobody")
    assert unknown.returncode != 0 and "no such account" in unknown.stderr


def test_org_import_reports_problems_and_counts(initialised: Path, tmp_path: Path) -> None:
    # A broken org file is refused with the problems; a good one reports what changed.
    bad = tmp_path / "bad.toml"
    bad.write_text('[[unit]]\nid = "bureau"\nname = "局"\nkind = "castle"\n', encoding="utf-8")
    result = yizhan(initialised, "org", "import", str(bad))
    assert result.returncode != 0 and "kind 'castle'" in result.stderr
    good = tmp_path / "org.toml"
    good.write_text(
        '[[unit]]\nid = "bureau"\nname = "局"\nkind = "bureau"\n'
        '[[person]]\naccount = "lijun"\nname = "李軍"\nunit = "bureau"\n'
        'roles = ["bureau_leader"]\n',
        encoding="utf-8",
    )
    result = yizhan(initialised, "org", "import", str(good))
    assert result.returncode == 0, result.stderr
    assert "people added: 1" in result.stdout


def test_bad_config_stops_check_with_the_key(tmp_path: Path) -> None:
    # `yizhan check` names the bad key and what is allowed.
    path = tmp_path / "y.toml"
    path.write_text("[smtp]\nmax_message_size = -1\n", encoding="utf-8")
    result = yizhan(path, "check")
    assert result.returncode != 0
    assert "smtp.max_message_size" in result.stderr and "at least" in result.stderr
