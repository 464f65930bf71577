"""What a valid Outpost ID, region, account, name and cluster name look like.

Pure functions shared by the fleet file parser, the services, the forms and the API: each returns
None when the value is fine, or a sentence saying what is wrong with it.
"""

from __future__ import annotations

import re

OUTPOST_ID_RE = re.compile(r"^op-[0-9a-f]{17}$")
# us-west-2, eu-central-1, ap-southeast-4, us-gov-west-1, cn-north-1, us-iso-east-1, us-isob-east-1.
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
# EKS: 1-100 characters, starts with a letter or digit, then letters, digits, hyphens, underscores.
CLUSTER_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
NAME_MAX = 200


def outpost_id_problem(value: str) -> str | None:
    if not value:
        return "is required"
    if OUTPOST_ID_RE.match(value):
        return None
    if OUTPOST_ID_RE.match(value.lower()):
        return f"{value!r} must be lower-case (AWS writes Outpost IDs as 'op-' + 17 lower-case hex digits)"
    return f"{value!r} is not an Outpost ID: expected 'op-' followed by 17 lower-case hex digits"


def region_problem(value: str) -> str | None:
    if not value:
        return "is required"
    if REGION_RE.match(value):
        return None
    return f"{value!r} is not an AWS region name (like us-west-2)"


def account_id_problem(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if ACCOUNT_ID_RE.match(value):
        return None
    return f"{value!r} is not an AWS account ID: expected 12 digits"


def name_problem(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    if len(value) > NAME_MAX:
        return f"is {len(value)} characters long; at most {NAME_MAX} are allowed"
    return None


def cluster_name_problem(value: str) -> str | None:
    if not value:
        return "is required"
    if CLUSTER_NAME_RE.match(value):
        return None
    return (
        f"{value!r} is not an EKS cluster name: 1-100 letters, digits, '-' or '_', "
        "starting with a letter or digit"
    )


def outpost_id_from_arn(arn: str) -> str:
    """arn:aws:outposts:us-west-2:123456789012:outpost/op-0123456789abcdef0 -> op-0123456789abcdef0."""
    return arn.rsplit("/", 1)[-1]


def account_id_from_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and ACCOUNT_ID_RE.match(parts[4]) else None
