"""The key a client's address is counted under (failed sign-ins, wrong tokens, the beacon
limit): without a proxy's port, IPv6 by its /64, IPv4-mapped as IPv4."""

from __future__ import annotations

import pytest

from guidebot.web.signin_throttle import _counted_as


@pytest.mark.parametrize(("sent", "key"), [
    ("203.0.113.7", "203.0.113.7"),
    ("203.0.113.7:5555", "203.0.113.7"),  # a port appended by the proxy: the same client
    ("[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),  # another address of the same /64
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("unknown", "unknown"),  # not an address: as sent
    ("x" * 80, "x" * 64),
])
def test_addresses_are_counted_by_the_client_not_the_connection(sent: str, key: str) -> None:
    assert _counted_as(sent) == key
