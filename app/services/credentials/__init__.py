"""Emergency access: x509 credentials issued, renewed, verified and revoked through the CSR API, and
handed out as kubeconfigs and break-glass bundles.

`vocabulary` (constants, requests, refusals), `intake` (checking and recording a request),
`issuing` (the steps on the cluster), `upkeep` (verify, revoke), `steps` (the step recorder),
`keys` (server-held keys under the data key), `queries`, `access` (downloads, the fallback
identity), and `runs`: the one owner of long operations, with their sessions, for web, CLI and jobs.
"""
