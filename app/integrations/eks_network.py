"""Control-plane ENI IPs of an EKS local cluster, for `/etc/hosts` lines and direct-IP kubeconfigs.

EKS creates the control plane's static ENIs with the description `Amazon EKS <cluster name>`.
"""

from __future__ import annotations

import ipaddress
import socket

from botocore.exceptions import BotoCoreError, ClientError

from app.integrations.aws import AwsClients, describe_client_error


class NetworkLookupError(RuntimeError):
    """The IPs could not be read; the message says why (for showing, not raising to the user)."""


def control_plane_ips(clients: AwsClients, region: str, cluster_name: str) -> tuple[str, ...]:
    """Private IPs of the cluster's control-plane ENIs, sorted; empty when EKS created none."""
    ec2 = clients.client("ec2", region)
    ips: set[str] = set()
    try:
        paginator = ec2.get_paginator("describe_network_interfaces")
        pages = paginator.paginate(
            Filters=[{"Name": "description", "Values": [f"Amazon EKS {cluster_name}"]}]
        )
        for page in pages:
            for eni in page.get("NetworkInterfaces", []):
                for address in eni.get("PrivateIpAddresses", []):
                    if address.get("PrivateIpAddress"):
                        ips.add(address["PrivateIpAddress"])
                if eni.get("PrivateIpAddress"):
                    ips.add(eni["PrivateIpAddress"])
    except ClientError as exc:
        raise NetworkLookupError(describe_client_error(exc)) from None
    except BotoCoreError as exc:
        raise NetworkLookupError(str(exc)) from None
    return tuple(sorted(ips, key=ipaddress.ip_address))


def resolve_host(hostname: str) -> tuple[str, ...]:
    """What the endpoint's hostname resolves to now (empty when DNS fails or it is an IP)."""
    try:
        ipaddress.ip_address(hostname)
        return ()
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return ()
    return tuple(sorted({str(info[4][0]) for info in infos}, key=ipaddress.ip_address))
