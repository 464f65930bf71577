"""Exit 0 when AWS is configured for this process (used by `make run` to choose serve or demo)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def aws_configured() -> bool:
    if os.environ.get("LIFELINE_AWS_ENDPOINT_URL") or os.environ.get("LIFELINE_FLEET_FILE"):
        return True
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    aws_dir = Path(os.environ.get("AWS_CONFIG_FILE", Path.home() / ".aws" / "config")).parent
    return (aws_dir / "credentials").is_file() or (aws_dir / "config").is_file()


if __name__ == "__main__":
    sys.exit(0 if aws_configured() else 1)
