"""The catalogue's fixed text: each check's ID, title, base severity, guide section and remediation.

IDs are stable: exemptions, SARIF rule IDs and pipelines refer to them. Never rename one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.services.credentials.vocabulary import DEFAULT_GROUP
from app.services.readiness.model import Evidence, Finding, Severity, Status

GUIDE = "Prepare local Amazon EKS clusters on AWS Outposts for network disconnects"
GUIDE_URL = "https://docs.aws.amazon.com/eks/latest/userguide/eks-outposts-network-disconnects.html"
# Pod failover (the unreachable taint's 300 s default) is listed only on the instance-store variant
# of the page (eks-outposts-instance-store-network-disconnects), not on GUIDE.
GUIDE_INSTANCE_STORE = f"{GUIDE} (instance-store variant, eks-outposts-instance-store-network-disconnects)"


@dataclass(frozen=True)
class CheckSpec:
    check_id: str
    title: str
    severity: Severity
    guide_section: str
    remediation: str
    catches: str
    # What the check reads: manifests (works on a dump), live (needs a polled cluster),
    # aws (needs AWS facts), lifeline (needs Lifeline's own records), attestation (a person).
    needs: str
    # A longer disconnect horizon raises (a short one lowers) the severity of these checks.
    horizon_sensitive: bool = False


def _spec(*args: object, **kwargs: object) -> CheckSpec:
    return CheckSpec(*args, **kwargs)  # type: ignore[arg-type]


SPECS: dict[str, CheckSpec] = {
    spec.check_id: spec
    for spec in (
        _spec(
            "breakglass-credential",
            "A verified break-glass x509 credential outlives the horizon",
            Severity.critical,
            f"{GUIDE}: Authenticating to your local cluster during a network disconnect",
            "Issue a break-glass x509 credential on the Emergency access page (or with the CSR flow in "
            "AWS's guide), verify it against the cluster, and renew it before it expires within the "
            "disconnect horizon.",
            "No verified x509 credential, or one expiring within the disconnect horizon: nobody can "
            "sign in once IAM is unreachable.",
            "lifeline",
            True,
        ),
        _spec(
            "system-masters-binding",
            "No credential holds irrevocable system:masters membership",
            Severity.high,
            f"{GUIDE}: Authenticating to your local cluster during a network disconnect",
            "Issue break-glass certificates through Lifeline: each user gets a ClusterRoleBinding of "
            f"its own and the group O={DEFAULT_GROUP} (or one on LIFELINE_CREDENTIAL_ALLOWED_GROUPS), "
            "never O=system:masters: deleting a binding revokes the first, while the second stays "
            "superuser until the certificate expires. A certificate made by hand should bind its user, "
            "not a group, since every binding naming its group applies until it expires. Keep such "
            "certificates short-lived and their kubeconfigs out of circulation.",
            "CertificateSigningRequests approved or issued with O=system:masters (superuser that no "
            "binding change revokes); bindings naming the group are reported as redundant.",
            "manifests",
        ),
        _spec(
            "fallback-identity",
            "Lifeline has its own x509 identity for the cluster",
            Severity.high,
            f"{GUIDE}: Authenticating to your local cluster during a network disconnect",
            "Create Lifeline's fallback identity (a view x509 credential) on the Emergency access page "
            "so the dashboard can keep reading the cluster while STS is unreachable.",
            "The dashboard cannot read the cluster during a disconnect (no x509 view identity).",
            "lifeline",
            True,
        ),
        _spec(
            "endpoint-dns",
            "The API endpoint resolves to the control-plane IPs",
            Severity.high,
            f"{GUIDE}: Route 53 and local DNS",
            "Serve the endpoint from a local DNS server that caches its records, or add the offered "
            "/etc/hosts lines (control-plane ENI IPs) to the hosts that manage the cluster.",
            "Endpoint hostname that does not resolve, or resolves to IPs other than the control-plane "
            "ENIs (described Amazon EKS <cluster>).",
            "aws",
        ),
        _spec(
            "spare-capacity",
            "The cluster can lose its largest node and absorb a surge",
            Severity.high,
            f"{GUIDE}: Spare compute capacity",
            "Run spare worker nodes while connected (EC2 on Outposts costs nothing extra): enough that "
            "every pod still fits when the largest node fails, plus the configured surge.",
            "Requests beyond allocatable, no N+1 headroom, no room for the configured surge.",
            "manifests",
            True,
        ),
        _spec(
            "image-sources",
            "Images can be pulled without the Region",
            Severity.high,
            f"{GUIDE}: Container images",
            "Mirror images to a local registry (and list it in LIFELINE_READINESS_LOCAL_REGISTRIES), "
            "use imagePullPolicy IfNotPresent, and pre-pull images onto every node that may run them.",
            "Images from ECR or other remote registries, imagePullPolicy Always, images not cached "
            "on the nodes that could run them.",
            "manifests",
            True,
        ),
        _spec(
            "ebs-workloads",
            "Workloads do not need new EBS volumes to start or scale",
            Severity.high,
            f"{GUIDE}: Amazon EBS volumes",
            "Use local storage (instance store/NVMe, a local storage provider) for workloads that must "
            "create or scale while disconnected, or size StatefulSets and their volumes in advance.",
            "StatefulSet volumeClaimTemplates, generic ephemeral volumes, inline awsElasticBlockStore "
            "or EBS CSI volumes, and Pods or workloads mounting EBS-backed claims (class by "
            "storageClassName or the legacy beta annotation; a class not in the dump counts as EBS, "
            "a local cluster's default); StorageClass types other than gp2.",
            "manifests",
            True,
        ),
        _spec(
            "ebs-snapshots",
            "Backups do not rely on EBS snapshots",
            Severity.medium,
            f"{GUIDE}: Amazon EBS snapshots",
            "Back up to a local target (for example Velero with a local object store or file-system "
            "backups); EBS snapshots cannot be created or deleted while disconnected.",
            "VolumeSnapshotClasses with driver ebs.csi.aws.com.",
            "manifests",
        ),
        _spec(
            "alb-acm-certificates",
            "ALB TLS does not depend on ACM changes during a disconnect",
            Severity.medium,
            f"{GUIDE}: ALB and ACM",
            "Renew ACM certificates well before a disconnect could last beyond their expiry, and avoid "
            "new Ingresses or certificate rotation while disconnected (existing TLS keeps working).",
            "Ingresses whose TLS uses ACM (certificate-arn annotation or discovery); certificates "
            "expiring within the horizon when ACM can be read.",
            "manifests",
            True,
        ),
        _spec(
            "lb-controller-new-pods",
            "Workloads behind the Load Balancer Controller are sized ahead",
            Severity.high,
            f"{GUIDE}: AWS Load Balancer Controller",
            "Set replicas (and HPA minReplicas) to the peak you expect during a disconnect while "
            "connected: new pods get no ALB traffic, and with readiness gates never become Ready.",
            "Services of type LoadBalancer (NLB or Classic: only ALB works on Outposts); workloads "
            "behind ip targets or readiness-gate namespaces; HPA minimums below the "
            "current replicas.",
            "manifests",
            True,
        ),
        _spec(
            "vpc-cni-warm-ips",
            "Nodes keep enough warm IPs for pods started while disconnected",
            Severity.medium,
            f"{GUIDE}: Amazon VPC CNI",
            "Set MINIMUM_IP_TARGET (and WARM_IP_TARGET) on the aws-node DaemonSet to the pods a node "
            "may gain during a disconnect; keep it under the instance type's max pods.",
            "WARM_ENI_TARGET/WARM_IP_TARGET/MINIMUM_IP_TARGET below the pods a node may gain; nodes "
            "near max pods (ENIs x (IPv4 per ENI - 1) + 2).",
            "manifests",
            True,
        ),
        _spec(
            "local-observability",
            "Metrics and logs are collected locally",
            Severity.medium,
            f"{GUIDE}: Control-plane logs and monitoring",
            "Run Prometheus (or an equivalent) and Grafana plus a local log pipeline such as Fluent "
            "Bit shipping to a local store, so the cluster stays observable without CloudWatch.",
            "No local metrics store (a Prometheus-compatible server; exporters alone do not count) or "
            "log pipeline (a local store, or an agent whose outputs are local: Fluent Bit or Fluentd "
            "shipping only to CloudWatch Logs, Kinesis, S3 or amazonaws.com hosts does not count).",
            "manifests",
        ),
        _spec(
            "connected-status-alarm",
            "A CloudWatch alarm watches the Outpost's ConnectedStatus",
            Severity.medium,
            f"{GUIDE}: ConnectedStatus metric",
            "Create a CloudWatch alarm on AWS/Outposts ConnectedStatus (OutpostId dimension), Average "
            "< 1 for 3 x 60 s, TreatMissingData breaching, with an SNS action.",
            "No alarm on ConnectedStatus, or one without actions or that ignores missing data.",
            "aws",
        ),
        _spec(
            "iam-dependent-workloads",
            "Workloads do not need STS credentials",
            Severity.high,
            "EKS local clusters: IAM roles for service accounts and Pod Identity",
            "Give these workloads credentials that work without STS (or accept that they lose AWS "
            "access during a disconnect); IRSA is unsupported on local clusters.",
            "Pods and ServiceAccounts using IRSA (eks.amazonaws.com/role-arn) or EKS Pod Identity.",
            "manifests",
        ),
        _spec(
            "unreachable-toleration",
            "Eviction from an unreachable node is tuned",
            Severity.low,
            f"{GUIDE_INSTANCE_STORE}: Pod failover",
            "Set tolerationSeconds for node.kubernetes.io/unreachable:NoExecute deliberately on each "
            "workload (shorter to fail over faster, longer to ride out short node blips).",
            "Workloads that set no unreachable toleration and so are evicted after the default 300 s "
            "(an explicit value, even 300, is a choice; DaemonSet pods are never evicted).",
            "manifests",
        ),
        _spec(
            "cluster-health",
            "EKS reports the cluster healthy",
            Severity.high,
            "Troubleshoot local Amazon EKS clusters on AWS Outposts",
            "Resolve each health issue EKS reports (capacity, SSM reachability, IAM); a local cluster "
            "never reaches FAILED, it stays in CREATING/UPDATING until the cause is fixed.",
            "Health issues from DescribeCluster; a cluster stuck in CREATING or UPDATING.",
            "aws",
        ),
        _spec(
            "control-plane-capacity",
            "The Outpost has a free slot for the control-plane type",
            Severity.medium,
            "Capacity considerations for local clusters",
            "Keep one slot of the control-plane instance type free on the Outpost: EKS replaces "
            "control-plane instances one by one during updates and recovery.",
            "No free slot (AvailableInstanceType_Count = 0) for the control-plane instance type.",
            "aws",
        ),
        _spec(
            "etcd-backups",
            "etcd backups are taken (attested)",
            Severity.high,
            "Local clusters: etcd backup and quorum",
            "Take etcdctl snapshots or EBS backups on a schedule, then attest it here with an expiry.",
            "No current attestation that etcd backups exist (EKS takes none for local clusters).",
            "attestation",
        ),
        _spec(
            "local-dns-servers",
            "Local DNS servers serve the cluster (attested)",
            Severity.medium,
            f"{GUIDE}: Route 53 and local DNS",
            "Run local DNS servers (or Route 53 Resolver on Outposts) that cache the endpoint and "
            "service records, then attest it here with an expiry.",
            "No current attestation that local DNS keeps working without Route 53.",
            "attestation",
        ),
        _spec(
            "local-registry",
            "A local registry or mirror serves the images (attested)",
            Severity.medium,
            f"{GUIDE}: Container images",
            "Run a local registry or pull-through cache for every image workloads need, then attest it "
            "here with an expiry.",
            "No current attestation that a local registry or mirror holds the images.",
            "attestation",
        ),
        _spec(
            "disconnect-drill",
            "Access verified in a disconnect drill",
            Severity.high,
            f"{GUIDE}: simulate a disconnect to make sure that you can access your cluster",
            "Run a disconnect drill (Drills page, or lifeline drill start): a passed drill attests "
            "the cluster for LIFELINE_DRILL_VALID_DAYS; a failed item stays here until a drill passes.",
            "No passed drill recently, or the latest drill failed an item.",
            "attestation",
        ),
    )
}

# The title of a failing (or warned, or accepted) finding: the problem, not the condition it misses.
PROBLEM_TITLES: dict[str, str] = {
    "breakglass-credential": "No verified break-glass x509 credential outlives the horizon",
    "system-masters-binding": "A credential holds irrevocable system:masters membership",
    "fallback-identity": "Lifeline has no working x509 identity of its own for the cluster",
    "endpoint-dns": "The API endpoint does not resolve to the control-plane IPs",
    "spare-capacity": "The cluster cannot lose its largest node or absorb a surge",
    "image-sources": "Images need the Region to be pulled",
    "ebs-workloads": "Workloads need new EBS volumes to start or scale",
    "ebs-snapshots": "Backups rely on EBS snapshots",
    "alb-acm-certificates": "ALB TLS depends on ACM during a disconnect",
    "lb-controller-new-pods": "Load-balanced workloads are not sized for a disconnect",
    "vpc-cni-warm-ips": "Nodes lack warm IPs for pods started while disconnected",
    "local-observability": "Metrics or logs are not collected locally",
    "connected-status-alarm": "No CloudWatch alarm reliably watches the Outpost's ConnectedStatus",
    "iam-dependent-workloads": "Workloads need STS credentials",
    "unreachable-toleration": "Eviction from an unreachable node is left at the default",
    "cluster-health": "EKS reports the cluster unhealthy",
    "control-plane-capacity": "The Outpost has no free slot for the control-plane type",
    "etcd-backups": "No current attestation of etcd backups",
    "local-dns-servers": "No current attestation of local DNS servers",
    "local-registry": "No current attestation of a local registry or mirror",
    "disconnect-drill": "No disconnect drill has verified access recently",
}
PROBLEM_STATUSES = frozenset({Status.fail, Status.warn, Status.accepted})

ATTESTATION_TOPICS = tuple(check_id for check_id, spec in SPECS.items() if spec.needs == "attestation")


def finding(
    check_id: str,
    status: Status,
    summary: str,
    evidence: Iterable[Evidence] = (),
    *,
    severity: Severity | None = None,
    horizon_shift: int = 0,
) -> Finding:
    """A finding for `check_id` with the catalogue's title, guide section and remediation."""
    spec = SPECS[check_id]
    base = severity or spec.severity
    if spec.horizon_sensitive and horizon_shift:
        base = base.shifted(horizon_shift)
    return Finding(
        check_id=check_id,
        title=PROBLEM_TITLES[check_id] if status in PROBLEM_STATUSES else spec.title,
        severity=base,
        status=status,
        summary=summary,
        evidence=tuple(evidence),
        remediation=spec.remediation,
        guide_section=spec.guide_section,
    )
