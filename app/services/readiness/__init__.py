"""Disconnect-readiness checks for EKS local clusters: the catalogue, the snapshot it reads, exports."""
