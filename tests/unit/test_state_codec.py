"""Channel-code state: compact, ≤ 30 characters, round-trips, rejects foreign states."""

from __future__ import annotations

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
