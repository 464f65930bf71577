"""The `lifeline` command groups, one module per feature; `common` holds what they all share."""
