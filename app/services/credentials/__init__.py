"""Emergency access: x509 credentials issued, renewed, verified and revoked through the CSR API
(`lifecycle`), and handed out as kubeconfigs and break-glass bundles (`access`)."""
