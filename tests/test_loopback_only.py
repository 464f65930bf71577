"""The tests' resolver guard: loopback answers, everything else is "not known" without asking DNS."""

from __future__ import annotations

import socket

import pytest

from tests.support import loopback_only


def test_the_guard_is_installed_for_every_test() -> None:
    assert socket.getaddrinfo is loopback_only._getaddrinfo


@pytest.mark.parametrize("host", ["127.0.0.1", "127.20.0.10", "localhost", "::1", None])
def test_loopback_resolves(host: str | None) -> None:
    assert socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)


@pytest.mark.parametrize(
    "host", ["abc.gr7.us-west-2.eks.amazonaws.com", "10.100.0.1", "172.20.0.10", "192.168.1.1", "8.8.8.8"]
)
def test_anything_else_is_not_known(host: str) -> None:
    with pytest.raises(socket.gaierror) as raised:
        socket.getaddrinfo(host, 443)
    assert raised.value.errno == socket.EAI_NONAME
