"""Who made a call: the baseline key and caller class from ``userIdentity``.

The baseline key decides whose history an event is compared with, so it must be stable
across sessions, must not mix people, and must not be something the caller chooses. A
caller picks its own RoleSessionName (``aws sts assume-role --role-session-name``), so a
session name never decides which baseline an event gets, except where AWS or the account's
identity provider sets it:

* a role behind AWS IAM Identity Center (``AWSReservedSSO_*``) or one named for a SAML/OIDC
  identity provider (``_HUMAN_ROLE``; role names are the account admin's, not the caller's)
  is one principal *per person*: the session name is their user name or e-mail, set by the
  identity provider, and one person's baseline must not be diluted by their colleagues';
* any other role is ONE principal, whatever session names appear: 100,000 invented names
  are 100,000 events of one baseline, not 100,000 empty baselines. A person-like name on a
  role that automation uses is itself a signal: the baseline records the shape of session
  names as part of the client (``baseline.session_client``), so a new shape reads as a new
  client.

The caller class (``human``, ``automation``, ``aws-service``, ``anonymous``) picks default
thresholds and the peer group whose forest scores the principal. It is *sticky*: decided
once per principal, from the identity type and session issuer where those settle it
(``class_open`` False), else from the principal's own first events (IAM users and plain
roles: people's clients or SDKs, see ``baseline.Baseline._vote``), and never per event:
an IAM user whose key turns up with an SDK stays the person it was, and that is the signal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from typing import Any

HUMAN = "human"
AUTOMATION = "automation"
AWS_SERVICE = "aws-service"
ANONYMOUS = "anonymous"
CALLER_CLASSES = (HUMAN, AUTOMATION, AWS_SERVICE, ANONYMOUS)

# Session names automation gets: EC2 instance IDs, ECS task IDs (32 hex), SDK default
# session names (botocore-session-<epoch>, aws-go-sdk-<nanos>), numeric/uuid names.
_AUTOMATION_SESSION = re.compile(
    r"^(i-[0-9a-f]{8,17}|[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|botocore-session-\d+|aws-go-sdk-\d+|aws-sdk-[a-z]+-\d+|\d+|AutoScaling|GitHubActions|"
    r"terraform.*|cdk-.*|awslambda_\d+)$",
    re.IGNORECASE,
)
# A session name that names a person: an e-mail, or first.last / first_last user names.
_PERSON_SESSION = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$|^[a-z][a-z'-]+[._][a-z][a-z'-]+$", re.IGNORECASE)
_HUMAN_ROLE = re.compile(
    r"^AWSReservedSSO_|(^|[-_.])(saml|okta|azuread|entra|adfs|sso|federated?|human|people|admin-user)([-_.]|$)", re.I
)  # whole name parts: "payments-processor" is not an SSO role
# CloudTrail truncates user agents at 1 KB; only that much of one is ever read (attributions and
# their memo keys stay bounded however long a forged one is).
MAX_UA = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity an event is attributed to.

    ``key`` is the baseline key; ``arn`` is ``userIdentity.arn`` when present (kept for
    alerts); ``session`` is the assumed-role session name (an attribute, not part of the
    key for automation).
    """

    key: str
    caller_class: str
    identity_type: str
    arn: str
    account_id: str
    session: str = ""
    role_arn: str = ""  # the IAM role behind an assumed-role session
    class_open: bool = False  # the identity leaves the class to the principal's own first events


def _role_arn_from_assumed(arn: str) -> str:
    # arn:aws:sts::123:assumed-role/ROLE/SESSION -> arn:aws:iam::123:role/ROLE (role path is unknown here)
    head, _, rest = arn.partition(":assumed-role/")
    role = rest.split("/", 1)[0]
    return head.replace(":sts:", ":iam:", 1) + ":role/" + role if role else arn


def _per_person(role_name: str) -> bool:
    """Roles whose session names the identity provider sets (one principal per person)."""
    return bool(_HUMAN_ROLE.search(role_name))


def session_kind(session: str) -> str:
    """The shape of a role session name: person, instance, hex, digits or name (for novelty, not keys)."""
    if _PERSON_SESSION.match(session):
        return "person"
    if _AUTOMATION_SESSION.match(session):
        return "machine"
    return "name"


# IAM bounds real ARNs (a role ARN with its longest path is ~700 characters). A longer key is
# forged: kept whole it would sit in every store, checkpoint and Kafka key. Past this it becomes
# its head plus a digest of the whole, still one stable key per identity.
MAX_PRINCIPAL_KEY = 1024


def principal_of(event: dict[str, Any]) -> Principal:
    """Attribute a decoded CloudTrail event to its principal. Never raises on odd shapes."""
    p = _principal_of(event)
    if len(p.key) > MAX_PRINCIPAL_KEY:
        digest = hashlib.blake2b(p.key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        p = dataclasses.replace(p, key=f"{p.key[: MAX_PRINCIPAL_KEY - 40]}...#{digest}")
    return p


def _principal_of(event: dict[str, Any]) -> Principal:
    ui = event.get("userIdentity")
    recipient = str(event.get("recipientAccountId") or "")
    if not isinstance(ui, dict) or not ui:
        return Principal(f"anonymous@{recipient or 'unknown'}", ANONYMOUS, "", "", recipient)
    itype = str(ui.get("type") or "")
    arn = str(ui.get("arn") or "")
    account = str(ui.get("accountId") or recipient)
    if itype == "AssumedRole":
        ctx = ui.get("sessionContext")
        issuer = ctx.get("sessionIssuer") if isinstance(ctx, dict) else None
        role_arn = str(issuer.get("arn") or "") if isinstance(issuer, dict) else ""
        if not role_arn:
            role_arn = _role_arn_from_assumed(arn) if ":assumed-role/" in arn else f"role:{account}:unknown"
        session = arn.rsplit("/", 1)[-1] if ":assumed-role/" in arn else ""
        if not session:
            session = str(ui.get("principalId") or "").partition(":")[2]
        role_name = role_arn.rsplit("/", 1)[-1]
        if ui.get("invokedBy"):
            return Principal(role_arn, AUTOMATION, itype, arn, account, session, role_arn)
        if session and _per_person(role_name):
            return Principal(f"{role_arn}/{session.lower()}", HUMAN, itype, arn, account, session, role_arn)
        # One principal per role; its class comes from its own first events, not the session name.
        return Principal(role_arn, AUTOMATION, itype, arn, account, session, role_arn, class_open=True)
    if itype == "IAMUser":
        key = arn or f"arn:aws:iam::{account}:user/{ui.get('userName') or ui.get('principalId') or 'unknown'}"
        # Long-lived access keys on IAM users are mostly people's, but service users call from
        # SDKs on servers: the user's own first events settle which (baseline._vote), once.
        return Principal(key, HUMAN, itype, arn, account, class_open=True)
    if itype == "Root":
        return Principal(f"arn:aws:iam::{account}:root", HUMAN, itype, arn, account)
    if itype == "FederatedUser":
        return Principal(arn or f"federated:{account}:{ui.get('principalId')}", HUMAN, itype, arn, account)
    if itype == "AWSService":
        svc = str(ui.get("invokedBy") or event.get("sourceIPAddress") or "unknown")
        return Principal(f"service:{svc}", AWS_SERVICE, itype, arn, recipient or account)
    if itype == "AWSAccount":
        if account == "ANONYMOUS_PRINCIPAL" or not (ui.get("principalId") or account):
            return Principal(f"anonymous@{recipient or 'unknown'}", ANONYMOUS, itype, arn, recipient)
        # Cross-account access: principalId is "AROA...:session" or an account ID.
        return Principal(f"account:{account}", AUTOMATION, itype, arn, account)
    if itype == "IdentityCenterUser":
        obo = ui.get("onBehalfOf")
        uid = str(obo.get("userId") or "") if isinstance(obo, dict) else ""
        store = str(obo.get("identityStoreArn") or "") if isinstance(obo, dict) else ""
        return Principal(f"identity-center:{store}/{uid or ui.get('principalId')}", HUMAN, itype, arn, account)
    key = arn or f"{itype or 'unknown'}:{account}:{ui.get('principalId') or ui.get('userName') or ''}"
    return Principal(key, HUMAN, itype, arn, account)
