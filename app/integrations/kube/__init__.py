"""The one Kubernetes adapter: its vocabulary (`types`), the configured official client (`client`),
the identity Lifeline acts with (`identity`: EKS IAM token, else x509), the cluster operations the
credentials service needs (`operations`), kubeconfig reading and building (`kubeconfig`), and the
manifest loader shared by `lifeline check` and the simulator (`manifests`)."""
