"""The demo: moto plus three simulated EKS local clusters and the dashboard wired to them (`lifeline demo`).

Not part of the production code path: it needs the `demo` extra (moto, the simulator)."""
