import stat

import pytest

from invertavatar.errors import InvertAvatarError
from invertavatar.server.auth import (check_bind, host_allowed, host_header_name, is_loopback_host,
                                      load_or_create_token, token_matches)


def test_token_is_created_once_with_owner_only_permissions(tmp_path):
    path = tmp_path / "cfg" / "token"
    token, created = load_or_create_token(path)
    assert created and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_token(path)
    assert again == token and not created_again


def test_loose_token_file_is_tightened(tmp_path):
    path = tmp_path / "token"
    token, _ = load_or_create_token(path)
    path.chmod(0o644)
    assert load_or_create_token(path)[0] == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_empty_token_file_is_an_error_with_a_hint(tmp_path):
    path = tmp_path / "token"
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(InvertAvatarError) as info:
        load_or_create_token(path)
    assert info.value.code == "bad_token_file" and "Delete" in info.value.hint


def test_token_matching():
    assert token_matches("abc", "Bearer abc")
    assert token_matches("abc", "bearer abc")
    assert not token_matches("abc", "Bearer abd")
    assert not token_matches("abc", "Basic abc")
    assert not token_matches("abc", None)
    assert not token_matches("abc", "Bearer ")


def test_bind_rule():
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("192.168.1.5")
    check_bind("127.0.0.1", allow_remote=False)
    check_bind("0.0.0.0", allow_remote=True)
    with pytest.raises(InvertAvatarError) as info:
        check_bind("0.0.0.0", allow_remote=False)
    assert "--allow-remote" in info.value.hint


@pytest.mark.parametrize("header, name", [("localhost:8765", "localhost"), ("[::1]:80", "::1"),
                                          ("127.0.0.1", "127.0.0.1"), ("Evil.example:8765", "evil.example")])
def test_host_header_name(header, name):
    assert host_header_name(header) == name


def test_host_allowed_only_for_loopback_names():
    assert host_allowed("127.0.0.1:8765") and host_allowed("localhost") and host_allowed("[::1]:1")
    assert not host_allowed("attacker.example:8765") and not host_allowed(None)
    assert not host_allowed("127.0.0.1.attacker.example")
