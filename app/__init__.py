"""Outpost Lifeline: keeps EKS local clusters on AWS Outposts usable through a disconnect."""

__version__ = "0.1.0"
