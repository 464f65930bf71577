"""All ORM classes, imported here so `Base.metadata` is complete."""

from app.models.account import ApiToken, LoginThrottle, SsoLogin, User, WebSession
from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.connectivity import (
    ConnectedSample,
    DailyRollup,
    HalfHourRollup,
    HourlyRollup,
    Incident,
    UptimeWindow,
)
from app.models.credential import ClusterIdentity, Credential, CredentialDownload, CredentialEvent
from app.models.drill import Drill, DrillCheck, DrillEvent
from app.models.fleet import Cluster, Outpost
from app.models.notification import (
    NotificationAlert,
    NotificationAttempt,
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
    NotificationRule,
    QuietPeriod,
)
from app.models.poll_run import PollRun
from app.models.probe import ProbeResult, SiteStretch, SiteView
from app.models.readiness import ClusterReadiness, ReadinessAttestation, ReadinessExemption, ReadinessSample

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Cluster",
    "ClusterIdentity",
    "ClusterReadiness",
    "ConnectedSample",
    "Credential",
    "CredentialDownload",
    "CredentialEvent",
    "DailyRollup",
    "Drill",
    "DrillCheck",
    "DrillEvent",
    "HalfHourRollup",
    "HourlyRollup",
    "Incident",
    "LoginThrottle",
    "NotificationAlert",
    "NotificationAttempt",
    "NotificationChannel",
    "NotificationDelivery",
    "NotificationEvent",
    "NotificationRule",
    "Outpost",
    "PollRun",
    "ProbeResult",
    "QuietPeriod",
    "ReadinessAttestation",
    "ReadinessExemption",
    "ReadinessSample",
    "SiteStretch",
    "SiteView",
    "SsoLogin",
    "UptimeWindow",
    "User",
    "WebSession",
]
