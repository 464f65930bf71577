"""HTTP edge of readiness: the cluster list and cluster pages with their forms and exports (`clusters`),
and their presentation helpers (`view`)."""
