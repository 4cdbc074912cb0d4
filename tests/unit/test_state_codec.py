"""Channel-code state: compact, ≤ 30 characters, round-trips, rejects foreign states."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guidebot.contacts import state_codec


@given(st.integers(min_value=0, max_value=2**63))
def test_round_trip_and_length(code_id: int) -> None:
    state = state_codec.encode(code_id)
    assert len(state) <= 30
    assert state_codec.decode(state) == code_id


@given(st.text(max_size=30))
def test_foreign_states_decode_to_none_or_a_valid_id(state: str) -> None:
    decoded = state_codec.decode(state)
    assert decoded is None or state_codec.encode(decoded) == state


def test_mistyped_state_is_rejected() -> None:
    state = state_codec.encode(12345)
    typo = state[:-2] + ("0" if state[-2] != "0" else "1") + state[-1]
    assert state_codec.decode(typo) is None
    assert state_codec.decode("teststate") is None
    assert state_codec.decode("we_qr123") is None


def test_known_states_pin_the_check_character() -> None:
    """The check character is the position-weighted sum (weights 1, 2, 3, …) mod 36."""
    assert state_codec.encode(0) == "gb00"
    assert state_codec.encode(35) == "gbzz"
    assert state_codec.encode(36) == "gb101"  # 1·1 + 2·0 = 1
    assert state_codec.encode(12345) == "gb9ix0"  # 1·9 + 2·18 + 3·33 = 144 ≡ 0 (mod 36)


def test_the_longest_state_is_30_characters_and_longer_ones_are_refused() -> None:
    longest = state_codec.encode(36**27 - 1)  # 27 base-36 digits: "gb" + 27 + check
    assert len(longest) == 30 and state_codec.decode(longest) == 36**27 - 1
    with pytest.raises(ValueError, match="^state would exceed 30 characters$"):
        state_codec.encode(36**27)
    with pytest.raises(ValueError, match="^code id must not be negative$"):
        state_codec.encode(-1)


def test_a_state_needs_a_digit_and_a_check_character_after_the_prefix() -> None:
    assert state_codec.decode("gb") is None
    assert state_codec.decode("gb0") is None  # "0" alone: no body
    assert state_codec.decode("gb00") == 0


def test_a_group_code_state_is_never_read_as_a_channel_state_nor_the_other_way() -> None:
    for code_id in (0, 1, 35, 36, 12345, 36**27 - 1):
        group = state_codec.encode(code_id, prefix=state_codec.GROUP_PREFIX)
        channel = state_codec.encode(code_id)
        assert group.startswith("gj") and len(group) <= 30
        assert state_codec.decode(group, prefix=state_codec.GROUP_PREFIX) == code_id
        assert state_codec.decode(group) is None
        assert state_codec.decode(channel, prefix=state_codec.GROUP_PREFIX) is None
