"""Thin adapters over boto3, the Kubernetes client and crypto. They import nothing from `app` but
settings types and return our own frozen dataclasses: SDK objects never leave this package."""
