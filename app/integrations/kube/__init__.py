"""The one Kubernetes adapter: the configured official client (`client`), the cluster operations
the credentials service needs (`operations`), kubeconfig reading and building (`kubeconfig`), and
the manifest loader shared by `lifeline check` and the simulator (`manifests`)."""
