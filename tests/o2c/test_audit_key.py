"""The audit key: generated once by ``o2c up`` outside the database, found the same way by the
services and the CLI, rotatable, and refused at start when it cannot be used."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.events.chain import AuditKeyError, Chain, parse_audit_keys
from libs.runtime.settings import RuntimeSettings
from o2c.supervisor import resolve_audit_key

PARTS = (b"previous|", b"content")


@pytest.fixture
def no_env_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("O2C_AUDIT_KEYS", raising=False)
    monkeypatch.delenv("O2C_AUDIT_KEY_FILE", raising=False)
    yield


def test_key_file_is_generated_0600_once_and_read_by_the_services(
    tmp_path: Path, no_env_keys: None,
) -> None:
    previous = os.umask(0)
    try:
        path = resolve_audit_key(tmp_path / "data")
    finally:
        os.umask(previous)
    assert path == tmp_path / "data" / "audit-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert resolve_audit_key(tmp_path / "data") == path and path.read_text() == text

    from_data_dir = RuntimeSettings(data_dir=tmp_path / "data").audit_chain()
    from_file_setting = RuntimeSettings(audit_key_file=path).audit_chain()
    assert from_data_dir.signing_key == "k1"
    link = from_data_dir.sign(PARTS)
    assert from_file_setting.check(link, PARTS) == "ok"
    assert Chain(parse_audit_keys(text)).check(link, PARTS) == "ok"


def test_keys_in_the_environment_win_and_nothing_is_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("O2C_AUDIT_KEYS", "k7:" + "7" * 40)
    assert resolve_audit_key(tmp_path) is None
    assert not (tmp_path / "audit-key").exists()
    assert RuntimeSettings(data_dir=tmp_path).audit_chain().signing_key == "k7"


def test_no_key_anywhere_is_unkeyed_mode(tmp_path: Path, no_env_keys: None) -> None:
    chain = RuntimeSettings(data_dir=tmp_path).audit_chain()
    assert chain.mode == "unkeyed" and chain.sign(PARTS) == Chain().sign(PARTS)


@pytest.mark.parametrize(("keys", "reason"), [
    ("k1:short", "at least 32 characters"),
    ("no-colon-" + "x" * 40, "<key id>:<secret>"),
    ("bad id!:" + "x" * 40, "<key id>:<secret>"),
    (f"k1:{'a' * 40},k1:{'b' * 40}", "given twice"),
])
def test_unusable_keys_fail_at_start_without_showing_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: str, reason: str,
) -> None:
    monkeypatch.setenv("O2C_AUDIT_KEYS", keys)
    with pytest.raises(AuditKeyError, match=reason) as error:
        RuntimeSettings(data_dir=tmp_path).audit_chain()
    assert "x" * 40 not in str(error.value) and "a" * 40 not in str(error.value)


def test_a_configured_key_file_that_is_missing_or_empty_fails(
    tmp_path: Path, no_env_keys: None,
) -> None:
    with pytest.raises(AuditKeyError, match="does not exist"):
        RuntimeSettings(audit_key_file=tmp_path / "nowhere").audit_chain()
    (tmp_path / "empty").write_text("# rotated out\n")
    with pytest.raises(AuditKeyError, match="holds no audit key"):
        RuntimeSettings(audit_key_file=tmp_path / "empty").audit_chain()


def test_rotation_file_first_line_signs_every_line_verifies(tmp_path: Path,
                                                            no_env_keys: None) -> None:
    old = Chain(parse_audit_keys("k1:" + "1" * 40))
    (tmp_path / "audit-key").write_text(f"k2:{'2' * 40}\nk1:{'1' * 40}\n")
    rotated = RuntimeSettings(audit_key_file=tmp_path / "audit-key").audit_chain()
    assert rotated.key_ids == ("k2", "k1")
    assert rotated.check(old.sign(PARTS), PARTS) == "ok"
    assert rotated.sign(PARTS).startswith("k2:")
    assert old.check(rotated.sign(PARTS), PARTS) == "unknown-key"
    assert rotated.check(Chain().sign(PARTS), PARTS) == "unkeyed"
    assert rotated.check("k2:" + "A" * 43, PARTS) == "altered"
