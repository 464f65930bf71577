"""The one AWS client factory (app.integrations.aws.AwsClients)."""

from __future__ import annotations

from app.integrations.aws import AwsClients


def test_one_client_per_service_and_region_with_explicit_config() -> None:
    clients = AwsClients(endpoint_url="http://127.0.0.1:1", connect_timeout=2, read_timeout=5, max_attempts=3)
    ec2 = clients.client("ec2", "us-west-2")
    assert clients.client("ec2", "us-west-2") is ec2
    assert clients.client("ec2", "eu-west-1") is not ec2
    assert ec2.meta.endpoint_url == "http://127.0.0.1:1"
    config = ec2.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2, 5)
    # botocore reads `max_attempts` as retries after the first request.
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_equal_settings_make_equal_factories() -> None:
    a = AwsClients(endpoint_url=None, connect_timeout=2, read_timeout=5, max_attempts=1)
    b = AwsClients(endpoint_url=None, connect_timeout=2, read_timeout=5, max_attempts=1)
    a.client("sts", "us-west-2")
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
