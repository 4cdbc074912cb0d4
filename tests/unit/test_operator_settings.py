"""[server] operator_token / operator_token_env: optional, never a placeholder."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.errors import ConfigError
from guidebot.settings import load_settings
from tests.unit.test_settings import GOOD, _write


def test_operator_token_is_off_by_default_inline_or_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(_write(tmp_path, GOOD)).server.operator_token == ""
    inline = '[server]\noperator_token = "op-7f3a-9c2e-41d0"\n' + GOOD
    assert load_settings(_write(tmp_path, inline)).server.operator_token == "op-7f3a-9c2e-41d0"
    monkeypatch.setenv("GB_OPERATOR", "from-env-5e1b-77aa")
    env = '[server]\noperator_token_env = "GB_OPERATOR"\n' + GOOD
    assert load_settings(_write(tmp_path, env)).server.operator_token == "from-env-5e1b-77aa"


@pytest.mark.parametrize("placeholder", ["changeme", "secret", "TODO", " xxx "])
def test_a_placeholder_operator_token_is_refused(tmp_path: Path, placeholder: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for server in (f'operator_token = "{placeholder}"', 'operator_token_env = "GB_OPERATOR"'):
        monkeypatch.setenv("GB_OPERATOR", placeholder)
        with pytest.raises(ConfigError) as caught:
            load_settings(_write(tmp_path, f"[server]\n{server}\n" + GOOD))
        assert "server.operator_token" in str(caught.value)
        assert "placeholder" in str(caught.value)
