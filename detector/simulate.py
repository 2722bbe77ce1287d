"""Realistic CloudTrail traffic with labelled attack scenarios.

This module owns the synthetic world the tests, the demo, the evaluation and the benchmarks run
on: two AWS accounts, a roster of principals with their own habits (people on SSO roles and IAM
users, Lambda/ECS/EC2 service roles, nightly batch jobs, CI/CD deploy roles, AWS services), the
events they produce day by day, and a handful of attack scenarios injected into the last
``test_days`` days with a :class:`Label` naming every attack event.

Everything is pure generation under a seed: each principal-day, each attack and each delivery
hour draws from its own ``random.Random`` seeded with a string (SHA-512 based, so independent of
``PYTHONHASHSEED``), never from global random state. The same plan therefore gives byte-identical
events, and :func:`labels` can rebuild the attack events without generating the background.
:func:`write_archive` is the one shell that touches the file system.

Events are plain dicts shaped like CloudTrail records (``eventVersion`` 1.08/1.09) with the real
quirks kept on purpose, because the decoder and the detector must cope with them: S3 data events
carry a bracketed ``userAgent``, ``ConsoleLogin`` has no ``requestID``, calls made by AWS
services on a role's behalf carry ``invokedBy``, and IAM calls land in ``us-east-1``.
"""

# ruff: noqa: S311 - seeded pseudo-randomness is the point here: reproducible traffic, not secrets

from __future__ import annotations

import base64
import calendar
import dataclasses
import gzip
import hashlib
import math
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detector.errors import ConfigError

__all__ = [
    "ACCOUNTS",
    "DEFAULT_START",
    "MIN_PRINCIPALS",
    "SCENARIOS",
    "Label",
    "SimulationPlan",
    "iter_bulk",
    "iter_events",
    "labels",
    "plan",
    "roster",
    "write_archive",
]

SCENARIOS: dict[str, str] = {
    "bulk_exfiltration": "a principal suddenly downloads thousands of objects (GBs) from a bucket it never reads",
    "stolen_credentials": "a service role's credentials used from an outside laptop: whoami, list buckets, read",
    "recon_burst": "about 100 Describe/List/Get calls across services in minutes, never used before, many denied",
    "slow_exfiltration": "a few dozen objects an hour for hours from a sensitive bucket it never used, at night",
    "sensitive_config_change": "public bucket policy, public-access block removed, snapshot shared, trail stopped",
    "mass_delete": "hundreds of DeleteObject calls on one bucket within minutes, versioning suspended first",
    "privilege_escalation": "CreateAccessKey / AttachUserPolicy AdministratorAccess / CreateLoginProfile on a user",
}

ACCOUNTS: tuple[str, str] = ("111122223333", "444455556666")
"""Production account (apps, deploys) and data account (data lake, finance, HR)."""

DEFAULT_START = calendar.timegm((2026, 1, 5, 0, 0, 0))
"""Monday 2026-01-05 00:00 UTC: a fixed start keeps output reproducible and weekdays aligned."""

MIN_PRINCIPALS = 20
"""Fewer principals cannot hold one of every kind plus distinct victims for every scenario."""

_DAY = 86400
_HOUR = 3600
_TRAIL_BUCKET = {ACCOUNTS[0]: "acme-prod-cloudtrail-logs", ACCOUNTS[1]: "acme-data-cloudtrail-logs"}
_EXTERNAL_ACCOUNT = "999988887777"
_ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"


@dataclass(frozen=True)
class Label:
    """The ground truth for one injected attack.

    ``start`` and ``end`` are the event times (epoch seconds, UTC) of the first and last attack
    event; ``event_ids`` names every event of the attack, in the order they were generated.
    ``principal_arn`` is the ``userIdentity.arn`` all of them carry.
    """

    scenario: str
    principal_arn: str
    account_id: str
    start: float
    end: float
    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class SimulationPlan:
    """What to simulate. Build it with :func:`plan`, which validates it."""

    start: float
    days: int
    test_start: float
    seed: int
    scenarios: tuple[str, ...]
    n_principals: int

    @property
    def end(self) -> float:
        return self.start + self.days * _DAY

    @property
    def history_days(self) -> int:
        return int((self.test_start - self.start) // _DAY)


def plan(
    days: int,
    seed: int = 7,
    scenarios: Sequence[str] | None = None,
    test_days: int = 3,
    principals: int = 60,
    start: float | None = None,
) -> SimulationPlan:
    """Validate the simulation parameters.

    Parameters
    ----------
    days : int
        Total simulated days; the first ``days - test_days`` are clean history.
    seed : int
        Seed of every random draw; the same plan always gives the same events.
    scenarios : sequence of str or None
        Attack scenarios to inject (keys of :data:`SCENARIOS`); ``None`` means all of them, an
        empty sequence means benign traffic only.
    test_days : int
        Number of final days that may hold attacks (benign novelty happens on every day).
    principals : int
        Size of the roster, at least :data:`MIN_PRINCIPALS` (AWS service callers included).
    start : float or None
        Epoch seconds of the first day, a UTC midnight; default :data:`DEFAULT_START`.

    Raises
    ------
    ConfigError
        (a ``ValueError``) for an unknown scenario or inconsistent sizes; the message says what is valid.
    """
    names = tuple(SCENARIOS) if scenarios is None else tuple(dict.fromkeys(scenarios))
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        raise ConfigError(f"unknown scenario {', '.join(map(repr, unknown))}; valid names: {', '.join(SCENARIOS)}")
    if days < 1:
        raise ConfigError(f"days must be at least 1, got {days}")
    if not 0 <= test_days < days:
        raise ConfigError(f"test_days must be in [0, days) so at least one history day remains, got {test_days}")
    if names and test_days < 1:
        raise ConfigError("scenarios need test_days >= 1; pass scenarios=[] for benign traffic only")
    if principals < MIN_PRINCIPALS:
        raise ConfigError(f"principals must be at least {MIN_PRINCIPALS}, got {principals}")
    begin = float(DEFAULT_START if start is None else start)
    if begin % _DAY:
        raise ConfigError(f"start must be a UTC midnight (a multiple of 86400), got {begin}")
    return SimulationPlan(
        start=begin,
        days=days,
        test_start=begin + (days - test_days) * _DAY,
        seed=seed,
        scenarios=names,
        n_principals=principals,
    )


# ---------------------------------------------------------------------------------------------
# Identifiers and formatting
# ---------------------------------------------------------------------------------------------

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # AWS key ids are base32-like
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _digest(*parts: object) -> int:
    raw = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=32).digest(), "big")


def _token(*parts: object, n: int = 16, alphabet: str = _KEY_ALPHABET) -> str:
    """A stable id derived from ``parts``: benign and attack code derive the same key independently."""
    num = _digest(*parts)
    out = []
    for _ in range(n):
        num, r = divmod(num, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


@lru_cache(maxsize=1 << 16)
def _hex(*parts: object, n: int = 16) -> str:
    return f"{_digest(*parts):064x}"[:n]


def _uuid(rng: random.Random) -> str:
    n = rng.getrandbits(128)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[n & 3]}{h[17:20]}-{h[20:]}"


def _s3_request_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016X}"


def _amz_id_2(rng: random.Random) -> str:
    return base64.b64encode(rng.getrandbits(448).to_bytes(56, "little")).decode()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _expiration(t: float) -> str:
    # STS responses print expirations Java-style: "Jan 5, 2026, 3:04:05 PM"
    g = time.gmtime(t)
    hour = g.tm_hour % 12 or 12
    half = "AM" if g.tm_hour < 12 else "PM"
    return f"{time.strftime('%b', g)} {g.tm_mday}, {g.tm_year}, {hour}:{g.tm_min:02d}:{g.tm_sec:02d} {half}"


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


# ---------------------------------------------------------------------------------------------
# API catalogue: what each call looks like on the wire
# ---------------------------------------------------------------------------------------------

_Params = Callable[[random.Random, "_Caller", "_World"], "dict[str, Any] | None"]

_SOURCE = {
    "cloudwatch": "monitoring.amazonaws.com",
    "elasticloadbalancing": "elasticloadbalancing.amazonaws.com",
}
_GLOBAL = {"iam", "organizations", "route53", "ce", "signin"}  # logged in us-east-1 whatever the caller's region
_VERSION = {"sts": "1.08", "kms": "1.08", "ssm": "1.08", "signin": "1.08", "ecr": "1.08", "athena": "1.08"}


@dataclass(frozen=True, slots=True)
class _Api:
    key: str  # "<iam prefix>:<eventName>", e.g. "lambda:ListFunctions20150331"
    source: str
    name: str
    read_only: bool
    params: _Params | None
    version: str


def _fresh(template: dict[str, Any]) -> _Params:
    blob = orjson.dumps(template)

    def build(rng: random.Random, c: _Caller, w: _World) -> dict[str, Any]:
        return orjson.loads(blob)

    return build


def _pick(param: str, names: str, **extra: Any) -> _Params:
    blob = orjson.dumps(extra)

    def build(rng: random.Random, c: _Caller, w: _World) -> dict[str, Any]:
        out: dict[str, Any] = {param: rng.choice(getattr(w.names[c.account_id], names))}
        out.update(orjson.loads(blob))
        return out

    return build


def _bucket_op(sub: str) -> _Params:
    def build(rng: random.Random, c: _Caller, w: _World) -> dict[str, Any]:
        bucket = w.buckets[rng.choice(w.names[c.account_id].buckets)]
        return {sub: "", "bucketName": bucket.name, "Host": bucket.host}

    return build


def _arn_param(param: str, names: str, fmt: str) -> _Params:
    def build(rng: random.Random, c: _Caller, w: _World) -> dict[str, Any]:
        value = rng.choice(getattr(w.names[c.account_id], names))
        return {param: fmt.format(acct=c.account_id, region=c.region, name=value)}

    return build


def _log_query(rng: random.Random, c: _Caller, w: _World) -> dict[str, Any]:
    end = int(rng.random() * 1e3) + 1767571200000
    return {
        "logGroupName": rng.choice(w.names[c.account_id].log_groups),
        "startTime": end - 3_600_000,
        "endTime": end,
        "filterPattern": rng.choice(["ERROR", "\"timed out\"", "Exception", "{ $.status = 500 }"]),
    }


def _instance_param(rng: random.Random, c: _Caller, w: _World) -> dict[str, Any]:
    return {"instancesSet": {"items": [{"instanceId": rng.choice(w.names[c.account_id].instances)}]}}


_EMPTY = _fresh({})
_OWN = {"items": [{"owner": "self"}]}
_QUERY_ID = "5a1d2e33-8e34-4f0c-a2a5-0f4b8c1d2e3f"
_CATALOGUE_SPEC: tuple[tuple[str, bool, _Params | None], ...] = (
    ("sts:GetCallerIdentity", True, None),
    ("iam:ListUsers", True, None),
    ("iam:ListRoles", True, None),
    ("iam:ListPolicies", True, _fresh({"scope": "Local", "onlyAttached": False})),
    ("iam:GetUser", True, _pick("userName", "users")),
    ("iam:GetRole", True, _pick("roleName", "roles")),
    ("iam:ListAttachedRolePolicies", True, _pick("roleName", "roles")),
    ("iam:ListAttachedUserPolicies", True, _pick("userName", "users")),
    ("iam:ListRolePolicies", True, _pick("roleName", "roles")),
    ("iam:ListUserPolicies", True, _pick("userName", "users")),
    ("iam:ListGroups", True, None),
    ("iam:ListGroupsForUser", True, _pick("userName", "users")),
    ("iam:ListAccessKeys", True, _pick("userName", "users")),
    ("iam:ListMFADevices", True, _pick("userName", "users")),
    ("iam:GetAccountSummary", True, None),
    ("iam:GetAccountAuthorizationDetails", True, None),
    ("iam:ListInstanceProfiles", True, None),
    ("iam:GenerateCredentialReport", False, None),
    ("iam:GetCredentialReport", True, None),
    ("iam:GetAccountPasswordPolicy", True, None),
    ("iam:ListSAMLProviders", True, None),
    ("iam:ListOpenIDConnectProviders", True, None),
    ("iam:GetPolicy", True, _arn_param("policyArn", "policies", "arn:aws:iam::{acct}:policy/{name}")),
    ("ec2:DescribeInstances", True, _fresh({"instancesSet": {}, "filterSet": {}})),
    ("ec2:DescribeSecurityGroups", True, _fresh({"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}})),
    ("ec2:DescribeVpcs", True, _fresh({"vpcSet": {}, "filterSet": {}})),
    ("ec2:DescribeSubnets", True, _fresh({"subnetSet": {}, "filterSet": {}})),
    ("ec2:DescribeImages", True, _fresh({"executableBySet": {}, "imagesSet": {}, "ownersSet": _OWN, "filterSet": {}})),
    ("ec2:DescribeSnapshots", True,
     _fresh({"snapshotSet": {}, "ownersSet": _OWN, "restorableBySet": {}, "filterSet": {}})),
    ("ec2:DescribeVolumes", True, _fresh({"volumeSet": {}, "filterSet": {}})),
    ("ec2:DescribeKeyPairs", True, _fresh({"keySet": {}, "filterSet": {}})),
    ("ec2:DescribeRegions", True, _fresh({"regionSet": {}})),
    ("ec2:DescribeAvailabilityZones", True, _fresh({"availabilityZoneSet": {}, "availabilityZoneIdSet": {}})),
    ("ec2:DescribeAddresses", True, _fresh({"publicIpsSet": {}, "allocationIdsSet": {}, "filterSet": {}})),
    ("ec2:DescribeNetworkInterfaces", True, _fresh({"networkInterfaceIdSet": {}, "filterSet": {}})),
    ("ec2:DescribeRouteTables", True, _fresh({"routeTableIdSet": {}, "filterSet": {}})),
    ("ec2:DescribeInstanceTypes", True, _fresh({"DescribeInstanceTypesRequest": {"MaxResults": 100}})),
    ("ec2:DescribeLaunchTemplates", True, _fresh({"DescribeLaunchTemplatesRequest": {"MaxResults": 100}})),
    ("ec2:DescribeInstanceStatus", True, _fresh({"instancesSet": {}, "filterSet": {}, "includeAllInstances": False})),
    ("ec2:DescribeAccountAttributes", True, _fresh({"accountAttributeNameSet": {}, "filterSet": {}})),
    ("ec2:DescribeTags", True, _fresh({"filterSet": {}})),
    ("ec2:GetConsoleOutput", True, _pick("instanceId", "instances")),
    ("ec2:StartInstances", False, _instance_param),
    ("ec2:StopInstances", False, _instance_param),
    ("ec2:CreateTags", False, _instance_param),
    ("s3:ListBuckets", True, _fresh({"Host": "s3.amazonaws.com"})),
    ("s3:GetBucketLocation", True, _bucket_op("location")),
    ("s3:GetBucketPolicy", True, _bucket_op("policy")),
    ("s3:GetBucketAcl", True, _bucket_op("acl")),
    ("s3:GetBucketVersioning", True, _bucket_op("versioning")),
    ("s3:GetBucketEncryption", True, _bucket_op("encryption")),
    ("s3:GetBucketPublicAccessBlock", True, _bucket_op("publicAccessBlock")),
    ("s3:GetBucketTagging", True, _bucket_op("tagging")),
    ("s3:GetBucketLogging", True, _bucket_op("logging")),
    ("lambda:ListFunctions20150331", True, None),
    ("lambda:GetFunction20150331v2", True, _pick("functionName", "functions")),
    ("lambda:GetFunctionConfiguration20150331v2", True, _pick("functionName", "functions")),
    ("lambda:GetPolicy20150331v2", True, _pick("functionName", "functions")),
    ("lambda:ListAliases20150331", True, _pick("functionName", "functions")),
    ("lambda:ListVersionsByFunction20150331", True, _pick("functionName", "functions")),
    ("lambda:ListEventSourceMappings20150331", True, None),
    ("lambda:ListLayers20181031", True, None),
    ("lambda:UpdateFunctionCode20150331v2", False, _pick("functionName", "functions", publish=True)),
    ("lambda:UpdateFunctionConfiguration20150331v2", False, _pick("functionName", "functions", timeout=30)),
    ("secretsmanager:ListSecrets", True, None),
    ("secretsmanager:DescribeSecret", True, _pick("secretId", "secrets")),
    ("secretsmanager:GetSecretValue", True, _pick("secretId", "secrets")),
    ("secretsmanager:GetResourcePolicy", True, _pick("secretId", "secrets")),
    ("kms:ListKeys", True, None),
    ("kms:ListAliases", True, None),
    ("kms:DescribeKey", True, _pick("keyId", "kms_keys")),
    ("kms:GetKeyPolicy", True, _pick("keyId", "kms_keys", policyName="default")),
    ("kms:Decrypt", True, _fresh({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"})),
    ("kms:GenerateDataKey", True, _pick("keyId", "kms_keys", keySpec="AES_256")),
    ("cloudtrail:DescribeTrails", True, _fresh({"includeShadowTrails": True})),
    ("cloudtrail:ListTrails", True, None),
    ("cloudtrail:GetTrailStatus", True, _pick("name", "trails")),
    ("cloudtrail:GetEventSelectors", True, _pick("trailName", "trails")),
    ("cloudtrail:LookupEvents", True, _fresh({"maxResults": 50})),
    ("rds:DescribeDBInstances", True, None),
    ("rds:DescribeDBClusters", True, _fresh({"includeShared": False})),
    ("rds:DescribeDBSnapshots", True, _fresh({"includeShared": False, "includePublic": False})),
    ("logs:DescribeLogGroups", True, None),
    ("logs:DescribeLogStreams", True, _pick("logGroupName", "log_groups", orderBy="LastEventTime", descending=True)),
    ("logs:FilterLogEvents", True, _log_query),
    ("logs:StartQuery", True, _log_query),
    ("logs:GetQueryResults", True, _fresh({"queryId": "3bd1c7c4-1b4e-4d5a-9f8e-2c6f8d0c1a77"})),
    ("cloudwatch:DescribeAlarms", True, None),
    ("cloudwatch:DescribeAlarmHistory", True, _fresh({"maxRecords": 100})),
    ("ecs:ListClusters", True, None),
    ("ecs:DescribeClusters", True, _pick("clusters", "clusters")),
    ("ecs:ListServices", True, _pick("cluster", "clusters")),
    ("ecs:DescribeServices", True, _pick("cluster", "clusters")),
    ("ecs:ListTasks", True, _pick("cluster", "clusters")),
    ("ecs:DescribeTasks", True, _pick("cluster", "clusters")),
    ("ecs:DescribeTaskDefinition", True, _pick("taskDefinition", "services")),
    ("ecs:UpdateService", False, _pick("service", "services", forceNewDeployment=True)),
    ("ecs:RegisterTaskDefinition", False, _pick("family", "services", networkMode="awsvpc")),
    ("ecr:GetAuthorizationToken", True, None),
    ("ecr:DescribeRepositories", True, None),
    ("ecr:DescribeImages", True, _pick("repositoryName", "repos")),
    ("ecr:BatchCheckLayerAvailability", True, _pick("repositoryName", "repos")),
    ("ecr:InitiateLayerUpload", False, _pick("repositoryName", "repos")),
    ("ecr:UploadLayerPart", False, _pick("repositoryName", "repos")),
    ("ecr:CompleteLayerUpload", False, _pick("repositoryName", "repos")),
    ("ecr:PutImage", False, _pick("repositoryName", "repos", imageTag="latest")),
    ("cloudformation:DescribeStacks", True, _pick("stackName", "stacks")),
    ("cloudformation:ListStacks", True, None),
    ("cloudformation:DescribeStackEvents", True, _pick("stackName", "stacks")),
    ("cloudformation:DescribeStackResources", True, _pick("stackName", "stacks")),
    ("cloudformation:GetTemplate", True, _pick("stackName", "stacks")),
    ("cloudformation:GetTemplateSummary", True, _pick("stackName", "stacks")),
    ("cloudformation:CreateChangeSet", False, _pick("stackName", "stacks", changeSetType="UPDATE")),
    ("cloudformation:DescribeChangeSet", True, _pick("stackName", "stacks")),
    ("cloudformation:ExecuteChangeSet", False, _pick("stackName", "stacks")),
    ("ssm:GetParameter", True, _pick("name", "parameters", withDecryption=True)),
    ("ssm:GetParameters", True, _pick("names", "parameters", withDecryption=True)),
    ("ssm:GetParametersByPath", True, _fresh({"path": "/prod/", "recursive": True, "withDecryption": True})),
    ("ssm:DescribeParameters", True, None),
    ("ssm:PutParameter", False, _pick("name", "parameters", type="String", overwrite=True)),
    ("ssm:DescribeInstanceInformation", True, None),
    ("ssm:StartSession", False, _pick("target", "instances")),
    ("ssm:UpdateInstanceInformation", False, None),
    ("ssm:ListInstanceAssociations", True, None),
    ("athena:StartQueryExecution", False, _pick("queryExecutionContext", "glue_dbs", workGroup="primary")),
    ("athena:GetQueryExecution", True, _fresh({"queryExecutionId": _QUERY_ID})),
    ("athena:GetQueryResults", True, _fresh({"queryExecutionId": _QUERY_ID, "maxResults": 1000})),
    ("athena:ListWorkGroups", True, None),
    ("glue:GetDatabases", True, None),
    ("glue:GetTables", True, _pick("databaseName", "glue_dbs")),
    ("glue:GetTable", True, _pick("databaseName", "glue_dbs")),
    ("glue:GetPartitions", True, _pick("databaseName", "glue_dbs")),
    ("dynamodb:ListTables", True, None),
    ("dynamodb:DescribeTable", True, _pick("tableName", "tables")),
    ("sqs:ListQueues", True, None),
    ("sns:ListTopics", True, None),
    ("ce:GetCostAndUsage", True, _fresh({"granularity": "DAILY", "metrics": ["UnblendedCost"]})),
    ("ce:GetCostForecast", True, _fresh({"granularity": "MONTHLY", "metric": "UNBLENDED_COST"})),
    ("organizations:DescribeOrganization", True, None),
    ("organizations:ListAccounts", True, None),
    ("guardduty:ListDetectors", True, None),
    ("guardduty:ListFindings", True, _EMPTY),
    ("securityhub:GetFindings", True, _fresh({"maxResults": 100})),
    ("config:DescribeConfigRules", True, None),
    ("config:DescribeComplianceByConfigRule", True, None),
    ("access-analyzer:ListAnalyzers", True, None),
    ("autoscaling:DescribeAutoScalingGroups", True, None),
    ("elasticloadbalancing:DescribeLoadBalancers", True, None),
    ("elasticloadbalancing:DescribeTargetHealth", True, None),
    ("route53:ListHostedZones", True, None),
)


def _make_api(key: str, read_only: bool, params: _Params | None) -> _Api:
    prefix, name = key.split(":", 1)
    return _Api(
        key=key,
        source=_SOURCE.get(prefix, f"{prefix}.amazonaws.com"),
        name=name,
        read_only=read_only,
        params=params,
        version=_VERSION.get(prefix, "1.09"),
    )


_API: dict[str, _Api] = {k: _make_api(k, ro, fn) for k, ro, fn in _CATALOGUE_SPEC}
# calls that only exist in scenario and service code, with parameters built there
for _key, _ro in (
    ("signin:ConsoleLogin", False),
    ("sts:AssumeRole", True),
    ("sts:AssumeRoleWithWebIdentity", True),
    ("s3:PutBucketPolicy", False),
    ("s3:DeleteBucketPublicAccessBlock", False),
    ("s3:PutBucketVersioning", False),
    ("ec2:ModifySnapshotAttribute", False),
    ("cloudtrail:StopLogging", False),
    ("cloudtrail:DeleteTrail", False),
    ("iam:CreateUser", False),
    ("iam:CreateAccessKey", False),
    ("iam:AttachUserPolicy", False),
    ("iam:CreateLoginProfile", False),
    ("iam:PutUserPolicy", False),
):
    _API[_key] = _make_api(_key, _ro, None)

_PERSONA_APIS: dict[str, tuple[str, ...]] = {
    "developer": (
        "sts:GetCallerIdentity", "lambda:ListFunctions20150331", "lambda:GetFunction20150331v2",
        "lambda:GetFunctionConfiguration20150331v2", "logs:DescribeLogGroups", "logs:DescribeLogStreams",
        "logs:FilterLogEvents", "logs:StartQuery", "logs:GetQueryResults", "ecs:ListServices",
        "ecs:DescribeServices", "ecs:ListTasks", "ecs:DescribeTasks", "ecs:DescribeClusters",
        "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents", "cloudformation:ListStacks",
        "ssm:GetParameter", "ssm:GetParametersByPath", "secretsmanager:DescribeSecret", "dynamodb:DescribeTable",
        "dynamodb:ListTables", "sqs:ListQueues", "cloudwatch:DescribeAlarms", "ecr:DescribeRepositories",
        "ecr:DescribeImages", "s3:ListBuckets", "s3:GetBucketLocation", "ssm:PutParameter",
        "lambda:UpdateFunctionConfiguration20150331v2", "ec2:DescribeInstances",
    ),
    "data": (
        "sts:GetCallerIdentity", "athena:StartQueryExecution", "athena:GetQueryExecution",
        "athena:GetQueryResults", "athena:ListWorkGroups", "glue:GetDatabases", "glue:GetTables",
        "glue:GetTable", "glue:GetPartitions", "s3:ListBuckets", "s3:GetBucketLocation",
        "logs:DescribeLogGroups", "logs:FilterLogEvents", "dynamodb:DescribeTable",
    ),
    "ops": (
        "ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
        "ec2:DescribeVolumes", "ec2:DescribeInstanceStatus", "ec2:DescribeAddresses", "ec2:DescribeRouteTables",
        "ec2:StartInstances", "ec2:StopInstances", "ec2:CreateTags", "ssm:DescribeInstanceInformation",
        "ssm:StartSession", "cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory",
        "autoscaling:DescribeAutoScalingGroups", "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTargetHealth", "rds:DescribeDBInstances", "rds:DescribeDBClusters",
        "route53:ListHostedZones", "iam:GetRole", "iam:ListRoles", "logs:DescribeLogGroups",
        "logs:FilterLogEvents", "ecs:DescribeServices", "ecs:UpdateService", "cloudtrail:LookupEvents",
    ),
    "finance": (
        "ce:GetCostAndUsage", "ce:GetCostForecast", "organizations:DescribeOrganization",
        "organizations:ListAccounts", "s3:ListBuckets", "sts:GetCallerIdentity",
    ),
    "security": (
        "iam:ListUsers", "iam:ListRoles", "iam:GetAccountAuthorizationDetails", "iam:GenerateCredentialReport",
        "iam:GetCredentialReport", "iam:ListAccessKeys", "iam:GetAccountSummary", "guardduty:ListDetectors",
        "guardduty:ListFindings", "securityhub:GetFindings", "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus", "cloudtrail:LookupEvents", "config:DescribeConfigRules",
        "config:DescribeComplianceByConfigRule", "access-analyzer:ListAnalyzers", "kms:ListKeys",
        "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock", "ec2:DescribeSecurityGroups",
    ),
}
_SSO_ROLE_OF = {
    "developer": "Developer",
    "data": "DataAnalyst",
    "ops": "AdministratorAccess",
    "finance": "Billing",
    "security": "SecurityAudit",
}
_RECON_SERVICES = {"iam", "ec2", "s3", "lambda", "secretsmanager", "kms", "rds", "dynamodb", "cloudtrail", "ssm",
                   "ecr", "guardduty", "organizations", "logs"}
_NOT_RECON = {"kms:Decrypt", "kms:GenerateDataKey", "ecr:BatchCheckLayerAvailability", "ssm:ListInstanceAssociations",
              "logs:GetQueryResults", "ssm:GetParameters"}
# what enumeration tools call: every read-only Describe/List/Get of the services attackers care about
_RECON_APIS: tuple[str, ...] = tuple(
    k for k, api in _API.items()
    if (api.read_only and k.split(":")[0] in _RECON_SERVICES and k not in _NOT_RECON and api.params is not None)
    or k in ("iam:ListUsers", "iam:ListRoles", "iam:ListPolicies", "s3:ListBuckets", "lambda:ListFunctions20150331",
             "secretsmanager:ListSecrets", "kms:ListKeys", "rds:DescribeDBInstances", "dynamodb:ListTables",
             "cloudtrail:ListTrails", "guardduty:ListDetectors", "organizations:DescribeOrganization")
)
_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1",
    "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2",
    "ca-central-1", "sa-east-1",
)


# ---------------------------------------------------------------------------------------------
# The world: buckets, names per account, principals
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bucket:
    name: str
    account_id: str
    region: str
    shape: str  # selects the object-key layout
    median_bytes: float
    sensitive: bool

    @property
    def host(self) -> str:
        if self.region == "us-east-1":
            return f"{self.name}.s3.amazonaws.com"
        return f"{self.name}.s3.{self.region}.amazonaws.com"


_BUCKETS = (
    _Bucket("acme-prod-web-assets", ACCOUNTS[0], "us-east-1", "assets", 80e3, False),
    _Bucket("acme-prod-user-uploads", ACCOUNTS[0], "us-east-1", "uploads", 1.5e6, False),
    _Bucket("acme-prod-app-logs", ACCOUNTS[0], "us-east-1", "logs", 3e6, False),
    _Bucket("acme-prod-build-artifacts", ACCOUNTS[0], "us-east-1", "artifacts", 20e6, False),
    _Bucket("acme-prod-eu-documents", ACCOUNTS[0], "eu-west-1", "documents", 5e5, False),
    _Bucket("acme-prod-customer-exports", ACCOUNTS[0], "us-east-1", "exports", 8e6, True),
    _Bucket("acme-prod-db-backups", ACCOUNTS[0], "us-east-1", "backups", 60e6, True),
    _Bucket("acme-prod-cloudtrail-logs", ACCOUNTS[0], "us-east-1", "trail", 40e3, True),
    _Bucket("acme-datalake-raw", ACCOUNTS[1], "us-east-1", "parquet", 12e6, False),
    _Bucket("acme-datalake-curated", ACCOUNTS[1], "us-east-1", "parquet", 25e6, False),
    _Bucket("acme-analytics-scratch", ACCOUNTS[1], "us-east-1", "csv", 2e6, False),
    _Bucket("acme-ml-artifacts", ACCOUNTS[1], "eu-west-1", "models", 150e6, False),
    _Bucket("acme-finance-reports", ACCOUNTS[1], "us-east-1", "reports", 4e5, True),
    _Bucket("acme-hr-payroll", ACCOUNTS[1], "us-east-1", "payroll", 2e5, True),
    _Bucket("acme-data-cloudtrail-logs", ACCOUNTS[1], "us-east-1", "trail", 40e3, True),
)
# AWS Config delivery buckets: only the Config service touches them
_CONFIG_BUCKETS = tuple(_Bucket(f"config-bucket-{a}", a, "us-east-1", "trail", 30e3, False) for a in ACCOUNTS)
_WORDS = ("orders", "payments", "invoices", "users", "search", "catalog", "shipping", "inventory", "reports", "auth")


@dataclass(slots=True)
class _AccountNames:
    """Resource names a caller can mention in requestParameters, per account."""

    buckets: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    kms_keys: list[str] = field(default_factory=list)
    log_groups: list[str] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    repos: list[str] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    glue_dbs: list[str] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)
    trails: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Principal:
    """One simulated caller and its habits. ``key`` is unique and seeds its random streams."""

    key: str
    kind: str
    name: str
    account_id: str
    region: str
    itype: str
    arn: str  # userIdentity.arn when stable; the role ARN for kinds whose session name rotates
    principal_id: str = ""
    role_name: str = ""
    role_arn: str = ""
    role_id: str = ""
    persona: str = ""
    tz: float = 0.0
    work: tuple[float, float] = (9.0, 17.5)
    ips: tuple[str, ...] = ()
    ip_cum: tuple[float, ...] = ()
    console: float = 0.0  # share of a person's actions made in the console
    browser_ua: str = ""
    cli_ua: str = ""
    cli_ua_new: str = ""
    upgrade_day: int = -1
    sdk_ua: str = ""
    apis: tuple[str, ...] = ()
    api_cum: tuple[float, ...] = ()
    buckets: tuple[str, ...] = ()
    write_buckets: tuple[str, ...] = ()
    new_bucket: str = ""
    new_bucket_day: int = -1
    rate: float = 0.0
    s3_share: float = 0.0
    error_rate: float = 0.01
    travel_p: float = 0.0
    first_day: int = 0
    access_key: str = ""
    session: str = ""  # function name, instance id, deploy session name
    nat_ip: str = ""
    private_ip: str = ""
    vpce: str = ""
    hour: float = 0.0
    batch_size: int = 0
    repo: str = ""
    starter: bool = False

    def entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.itype,
            "arn": self.arn,
            "role_arn": self.role_arn or None,
            "account_id": self.account_id or None,
            "region": self.region,
            "first_day": self.first_day,
        }


@dataclass(slots=True)
class _World:
    plan: SimulationPlan
    principals: list[_Principal]
    buckets: dict[str, _Bucket]
    names: dict[str, _AccountNames]
    by_kind: dict[str, list[_Principal]]


# people ---------------------------------------------------------------------------------------

_FIRST = (
    "alice", "bob", "carmen", "deepak", "elena", "farid", "grace", "hiro", "ines", "jamal", "katja", "liam",
    "maria", "nikhil", "olivia", "pablo", "quinn", "rosa", "samir", "tanya", "umar", "vera", "wei", "ximena",
    "yusuf", "zoe", "arjun", "beatriz", "chloe", "dmitri", "emeka", "fatima", "george", "hana", "ivan", "julia",
)
_LAST = (
    "chen", "garcia", "patel", "smith", "novak", "okafor", "kim", "rossi", "mueller", "nguyen", "silva",
    "johnson", "kowalski", "tanaka", "haddad", "larsen", "murphy", "fischer", "sato", "rahman", "dubois",
    "costa", "ivanova", "brown", "singh", "weber", "lopez", "ahmed", "berg", "moreau",
)
# (utc offset, weight, office egress /24, home ISP first octets)
_ZONES = (
    (-5.0, 0.40, "38.140.21", (73, 98, 24, 71, 174)),
    (-8.0, 0.20, "12.195.84", (73, 67, 76, 99)),
    (0.0, 0.15, "81.128.177", (86, 90, 82, 2)),
    (1.0, 0.15, "62.157.140", (87, 91, 93, 79)),
    (5.5, 0.10, "49.207.58", (106, 117, 122, 49)),
)
_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
_BROWSERS = (
    f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_WEBKIT} Chrome/131.0.0.0 Safari/537.36",
    f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    f"Mozilla/5.0 (X11; Linux x86_64) {_WEBKIT} Chrome/130.0.0.0 Safari/537.36",
)
_CLI_VERSIONS = ("2.15.30", "2.17.18", "2.18.5", "2.19.1", "2.22.4")
_OSES = (("macos", "23.6.0", "arm64"), ("macos", "24.1.0", "arm64"), ("linux", "6.8.0-49-generic", "x86_64"),
         ("windows", "10", "AMD64"), ("macos", "22.6.0", "x86_64"))
_BOTO = ("1.34.69", "1.35.36", "1.35.81")


def _cli_ua(version: str, os_: tuple[str, str, str], py: str = "3.12.6") -> str:
    # the trailing "md/command#{command}" is filled per call, as the real CLI does
    return (
        f"aws-cli/{version} md/awscrt#0.22.0 ua/2.0 os/{os_[0]}#{os_[1]} md/arch#{os_[2]} lang/python#{py} "
        f"md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#{{command}}"
    )


def _boto_ua(version: str, os_: tuple[str, str, str], extra: str = "", py: str = "3.12.6") -> str:
    return (
        f"Boto3/{version} md/Botocore#{version} ua/2.0 os/{os_[0]}#{os_[1]} md/arch#{os_[2]} "
        f"lang/python#{py} md/pyimpl#CPython {extra}cfg/retry-mode#legacy Botocore/{version}"
    )


_AMZN_KERNEL = ("linux", "5.10.228-219.884.amzn2.x86_64", "x86_64")
_SDK_UAS = (
    "aws-sdk-java/2.29.29 Linux/5.10.228-219.884.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.13+11-LTS Java/17.0.13 "
    "vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-go-v2/1.32.6 os/linux lang/go#1.23.4 md/GOOS#linux md/GOARCH#amd64",
    "aws-sdk-js/3.699.0 ua/2.1 os/linux#5.10.228-219.884.amzn2.x86_64 lang/js md/nodejs#20.18.1 m/E,N",
    _boto_ua("1.35.36", _AMZN_KERNEL),
)
_LAMBDA_UAS = (
    _boto_ua("1.34.145", _AMZN_KERNEL, "exec-env/AWS_Lambda_python3.12 ", "3.12.7"),
    "aws-sdk-js/3.632.0 ua/2.1 os/linux#5.10.227-239.884.amzn2.x86_64 lang/js md/nodejs#20.18.0 "
    "exec-env/AWS_Lambda_nodejs20.x m/E,N",
    "aws-sdk-go-v2/1.30.4 os/linux lang/go#1.22.6 md/GOOS#linux md/GOARCH#amd64 exec-env/AWS_Lambda_provided.al2023",
)
_SSM_AGENT_UA = "aws-sdk-go/1.55.5 (go1.22.9; linux; amd64) amazon-ssm-agent/3.3.1142.0"
_CW_AGENT_UA = "aws-sdk-go/1.55.5 (go1.22.7; linux; amd64) CWAgent/1.300049.1"
_GH_RUNNER_UA = _cli_ua("2.22.12", ("linux", "6.5.0-1025-azure", "x86_64"), "3.12.6").replace(
    "md/prompt#off", "md/distrib#ubuntu.22 md/prompt#off"
)
_GH_OIDC_UA = (
    "aws-sdk-js/3.696.0 ua/2.1 os/linux#6.5.0-1025-azure lang/js md/nodejs#20.18.1 api/sts#3.696.0 m/E "
    "configure-aws-credentials-for-github-actions"
)
# external addresses an attacker operates from (VPS and residential ranges nobody here uses)
_ATTACK_NETS = ("185.220.101", "45.137.21", "104.102.221", "193.189.100", "91.219.236", "5.188.206")
_ATTACK_UAS = (
    "aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59",
    _boto_ua("1.26.0", ("linux", "6.5.0-kali3-amd64", "x86_64"), "", "3.11.4"),
    _cli_ua("2.13.25", ("macos", "21.6.0", "x86_64"), "3.11.5"),
)
_AWS_NETS = {
    "us-east-1": ("3.80", "3.91", "34.224", "34.229", "44.192", "52.3", "54.144", "54.166"),
    "eu-west-1": ("34.240", "34.251", "52.16", "52.18", "54.72", "54.78", "63.32"),
}
_GH_NETS = ("20.29", "20.57", "20.102", "40.84", "52.176", "13.90", "4.246", "172.183")


def _ip(rng: random.Random, prefix: str) -> str:
    parts = prefix.split(".")
    while len(parts) < 4:
        parts.append(str(rng.randint(1, 254)))
    return ".".join(parts)


def _cum(weights: Sequence[float]) -> tuple[float, ...]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


def _habits(rng: random.Random, pool: Sequence[str], k: int) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """A person's favourite calls: a subset of the persona's pool with Zipf-like weights."""
    chosen = rng.sample(list(pool), min(k, len(pool)))
    # changes are rarer than looking: a write never becomes someone's everyday call
    weights = [(1.0 if _API[key].read_only else 0.12) / (i + 1) ** 0.9 for i, key in enumerate(chosen)]
    return tuple(chosen), _cum(weights)


def _allocate(n: int) -> dict[str, int]:
    """How many principals of each kind a roster of ``n`` holds (5 AWS service callers included)."""
    m = n - 5
    counts = {
        "lambda": max(2, round(m * 0.14)),
        "ecs_task": max(1, round(m * 0.07)),
        "ec2_instance": max(2, round(m * 0.11)),
        "batch": max(1, round(m * 0.055)),
        "deploy": max(1, round(m * 0.055)),
        "service_user": 1 if m >= 30 else 0,
        "human_iam_user": max(1, round(m * 0.10)),
    }
    counts["human_sso"] = m - sum(counts.values())
    counts["aws_service"] = 5
    return counts


def _key_uuid(*parts: object) -> str:
    h = _hex(*parts, n=32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _build_names(world: _World) -> None:
    for acct in ACCOUNTS:
        nm = _AccountNames()
        nm.buckets = [b.name for b in _BUCKETS if b.account_id == acct] + [f"config-bucket-{acct}"]
        nm.secrets = [f"prod/{w}/{s}" for w in _WORDS[:6] for s in ("db-password", "api-key")]
        nm.parameters = [f"/prod/{w}/{s}" for w in _WORDS[:6] for s in ("feature-flags", "endpoint")]
        nm.kms_keys = [_key_uuid(acct, i) for i in range(3)]
        nm.log_groups = [f"/aws/lambda/{w}-handler" for w in _WORDS[:5]]
        nm.log_groups += ["/ecs/checkout-service", "/var/log/messages"]
        nm.clusters = ["prod-cluster", "batch-cluster"]
        nm.services = [f"{w}-service" for w in _WORDS[:4]]
        nm.repos = [f"{w}-service" for w in _WORDS[:4]]
        nm.stacks = [f"{w}-stack" for w in _WORDS[:5]] + ["network-baseline", "iam-baseline"]
        nm.tables = [f"{w}-table" for w in _WORDS[:4]]
        nm.glue_dbs = ["raw", "curated", "finance"]
        nm.trails = [f"arn:aws:cloudtrail:us-east-1:{acct}:trail/management-events"]
        nm.policies = ["ReadOnlyS3", "DeployPolicy", "DataLakeReader", "BoundaryPolicy"]
        nm.snapshots = [f"snap-0{_hex(acct, 'snap', i, n=16)}" for i in range(4)]
        world.names[acct] = nm


def _sso_role(persona: str, acct: str) -> tuple[str, str, str]:
    name = f"AWSReservedSSO_{_SSO_ROLE_OF[persona]}_{_hex(acct, persona, n=16)}"
    arn = f"arn:aws:iam::{acct}:role/aws-reserved/sso.amazonaws.com/{name}"
    return name, arn, "AROA" + _token(acct, name, n=17)


def _add_human(world: _World, rng: random.Random, kind: str, idx: int, used: set[str]) -> _Principal:
    p = world.plan
    while True:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        if f"{first}.{last}" not in used:
            break
    used.add(f"{first}.{last}")
    persona = rng.choices(("developer", "data", "ops", "finance", "security"), cum_weights=_cum((45, 25, 15, 8, 7)))[0]
    acct = ACCOUNTS[1] if persona in ("data", "finance") else ACCOUNTS[0]
    if persona == "ops" and rng.random() < 0.3:
        acct = ACCOUNTS[1]
    zone = rng.choices(_ZONES, cum_weights=_cum([z[1] for z in _ZONES]))[0]
    tz, office, isps = zone[0], zone[2], zone[3]
    home = _ip(rng, f"{rng.choice(isps)}.{rng.randint(1, 250)}.{rng.randint(0, 255)}")
    ips = [_ip(rng, office), home]
    weights = [0.5, 0.5]
    if rng.random() < 0.3:  # a second home (partner's flat, weekend house) or a co-working space
        ips.append(_ip(rng, f"{rng.choice(isps)}.{rng.randint(1, 250)}.{rng.randint(0, 255)}"))
        weights.append(0.15)
    os_ = rng.choice(_OSES)
    version = rng.choice(_CLI_VERSIONS[:-1])
    use_boto = persona == "data" and rng.random() < 0.6
    if use_boto:
        cli = _boto_ua(rng.choice(_BOTO[:2]), os_)
        cli_new = _boto_ua(_BOTO[2], os_)
    else:
        cli = _cli_ua(version, os_)
        cli_new = _cli_ua(_CLI_VERSIONS[-1], os_)
    console = {"developer": 0.5, "data": 0.4, "ops": 0.6, "finance": 0.95, "security": 0.6}[persona]
    console = min(1.0, max(0.0, console + rng.uniform(-0.3, 0.3)))
    apis, api_cum = _habits(rng, _PERSONA_APIS[persona], rng.randint(8, 18))
    acct_buckets = [b for b in _BUCKETS if b.account_id == acct and not b.sensitive]
    reads: list[str] = []
    if persona in ("developer", "data", "ops"):
        reads = [b.name for b in rng.sample(acct_buckets, rng.randint(1, 3))]
    if persona == "finance":
        reads = ["acme-finance-reports"]
    s3_share = {"developer": 0.12, "data": 0.35, "ops": 0.08, "finance": 0.4, "security": 0.0}[persona]
    email = f"{first}.{last}@acmecorp.io"
    if kind == "human_sso":
        role_name, role_arn, role_id = _sso_role(persona, acct)
        arn = f"arn:aws:sts::{acct}:assumed-role/{role_name}/{email}"
        pr = _Principal(
            key=f"{kind}/{acct}/{email}", kind=kind, name=email, account_id=acct, region="us-east-1",
            itype="AssumedRole", arn=arn, principal_id=f"{role_id}:{email}", role_name=role_name,
            role_arn=role_arn, role_id=role_id,
        )
    else:
        user = f"{first[0]}{last}" if rng.random() < 0.5 else f"{first}.{last}"
        pr = _Principal(
            key=f"{kind}/{acct}/{user}", kind=kind, name=user, account_id=acct, region="us-east-1",
            itype="IAMUser", arn=f"arn:aws:iam::{acct}:user/{user}",
            principal_id="AIDA" + _token(acct, user, n=17), access_key="AKIA" + _token(acct, user, "key"),
        )
        world.names[acct].users.append(user)
    pr.persona = persona
    pr.tz = tz
    start_h = rng.uniform(7.5, 10.0)
    pr.work = (start_h, start_h + rng.uniform(7.5, 9.5))
    pr.ips, pr.ip_cum = tuple(ips), _cum(weights)
    pr.console = console
    pr.browser_ua = rng.choice(_BROWSERS)
    pr.cli_ua, pr.cli_ua_new = cli, cli_new
    pr.apis, pr.api_cum = apis, api_cum
    pr.buckets = tuple(reads)
    pr.s3_share = s3_share if reads else 0.0
    pr.rate = rng.lognormvariate(math.log(10), 0.5)
    pr.error_rate = rng.uniform(0.01, 0.03)
    pr.travel_p = rng.uniform(0.01, 0.04)
    if rng.random() < 0.35:
        pr.region = "eu-west-1" if tz >= 0 else "us-east-1"
    if rng.random() < 0.12:  # laptop upgrade some day, possibly inside the test window
        pr.upgrade_day = rng.randrange(1, max(2, p.days))
    return pr


def _role(acct: str, name: str) -> tuple[str, str]:
    return f"arn:aws:iam::{acct}:role/{name}", "AROA" + _token(acct, name, n=17)


@lru_cache(maxsize=8)
def _build_world(p: SimulationPlan) -> _World:
    rng = random.Random(f"{p.seed}|roster|{p.n_principals}")
    world = _World(plan=p, principals=[], buckets={b.name: b for b in _BUCKETS + _CONFIG_BUCKETS}, names={},
                   by_kind=defaultdict(list))
    _build_names(world)
    counts = _allocate(p.n_principals)
    out = world.principals
    used: set[str] = set()
    humans = [_add_human(world, rng, "human_sso", i, used) for i in range(counts["human_sso"])]
    humans += [_add_human(world, rng, "human_iam_user", i, used) for i in range(counts["human_iam_user"])]
    # benign novelty: one starter mid-history, one on the first test day (if the roster is big enough)
    sso = [h for h in humans if h.kind == "human_sso"]
    if p.history_days >= 2 and sso:
        sso[-1].first_day, sso[-1].starter = max(1, p.history_days // 2), True
    if len(sso) >= 10 and p.days - p.history_days >= 1:
        sso[-2].first_day, sso[-2].starter = p.history_days, True
    out.extend(humans)

    for i in range(counts["lambda"]):
        acct = ACCOUNTS[0] if i % 3 else ACCOUNTS[1]
        fn = f"{_WORDS[i % len(_WORDS)]}-{('api-handler', 'processor', 'worker', 'exporter', 'sync')[i % 5]}"
        if i >= len(_WORDS):
            fn += f"-{i}"
        role_name = f"{fn}-role-{_hex(acct, fn, n=8)}" if i % 2 else f"{fn.title().replace('-', '')}Role"
        role_arn, role_id = _role(acct, role_name)
        region = "eu-west-1" if i % 5 == 4 else "us-east-1"
        pr = _Principal(
            key=f"lambda/{acct}/{fn}", kind="lambda", name=fn, account_id=acct, region=region, itype="AssumedRole",
            arn=f"arn:aws:sts::{acct}:assumed-role/{role_name}/{fn}", principal_id=f"{role_id}:{fn}",
            role_name=role_name, role_arn=role_arn, role_id=role_id, session=fn,
        )
        own = [b for b in _BUCKETS if b.account_id == acct and not b.sensitive and b.region == region] or [
            b for b in _BUCKETS if b.account_id == acct and not b.sensitive
        ]
        pr.buckets = tuple(b.name for b in rng.sample(own, min(len(own), rng.randint(1, 2))))
        pr.write_buckets = pr.buckets[:1]
        pr.rate = rng.lognormvariate(math.log(22), 0.6)
        pr.sdk_ua = rng.choice(_LAMBDA_UAS)
        pr.error_rate = 0.003
        others = [b.name for b in own if b.name not in pr.buckets]
        if i == 0 and others and p.days >= 4:  # a new feature reads one more bucket from some day on
            pr.new_bucket, pr.new_bucket_day = rng.choice(others), rng.randrange(2, p.days)
        world.names[acct].functions.append(fn)
        out.append(pr)

    for i in range(counts["ecs_task"]):
        acct = ACCOUNTS[0]
        svc = f"{_WORDS[(i + 3) % len(_WORDS)]}-service" + (f"-{i}" if i >= len(_WORDS) else "")
        role_name = f"ecs-{svc}-task-role"
        role_arn, role_id = _role(acct, role_name)
        pr = _Principal(
            key=f"ecs_task/{acct}/{svc}", kind="ecs_task", name=svc, account_id=acct, region="us-east-1",
            itype="AssumedRole", arn=role_arn, role_name=role_name, role_arn=role_arn, role_id=role_id,
        )
        pr.buckets = (rng.choice(("acme-prod-user-uploads", "acme-prod-web-assets", "acme-prod-app-logs")),)
        pr.write_buckets = pr.buckets
        pr.rate = rng.lognormvariate(math.log(25), 0.4)
        pr.sdk_ua = rng.choice(_SDK_UAS[:3])
        pr.nat_ip = _ip(rng, rng.choice(_AWS_NETS["us-east-1"]))
        pr.private_ip = f"10.0.{rng.randint(16, 63)}.{rng.randint(2, 254)}"
        pr.vpce = "vpce-0" + _hex(acct, "vpce", n=16)
        pr.hour = rng.uniform(2, 4)  # days between deployments (new task id)
        world.names[acct].services.append(svc)
        out.append(pr)

    ec2_roles = ("app-server-role", "bastion-role", "jenkins-agent-role", "kafka-broker-role", "reporting-host-role",
                 "search-node-role", "etl-worker-role", "grafana-role")
    for i in range(counts["ec2_instance"]):
        acct = ACCOUNTS[0] if i % 4 != 3 else ACCOUNTS[1]
        role_name = ec2_roles[i % len(ec2_roles)] + (f"-{i}" if i >= len(ec2_roles) else "")
        role_arn, role_id = _role(acct, role_name)
        iid = "i-0" + _hex(p.seed, "ec2", i, n=16)
        pr = _Principal(
            key=f"ec2_instance/{acct}/{iid}", kind="ec2_instance", name=iid, account_id=acct, region="us-east-1",
            itype="AssumedRole", arn=f"arn:aws:sts::{acct}:assumed-role/{role_name}/{iid}",
            principal_id=f"{role_id}:{iid}", role_name=role_name, role_arn=role_arn, role_id=role_id, session=iid,
        )
        own = [b for b in _BUCKETS if b.account_id == acct and not b.sensitive and b.region == "us-east-1"]
        pr.buckets = tuple(b.name for b in rng.sample(own, rng.randint(1, 2)))
        pr.write_buckets = pr.buckets[:1]
        pr.rate = rng.lognormvariate(math.log(12), 0.5)
        pr.sdk_ua = rng.choice(_SDK_UAS)
        pr.nat_ip = _ip(rng, rng.choice(_AWS_NETS["us-east-1"]))
        pr.private_ip = f"10.{1 if acct == ACCOUNTS[0] else 2}.{rng.randint(0, 15)}.{rng.randint(2, 254)}"
        pr.vpce = "vpce-0" + _hex(acct, "vpce", n=16)
        world.names[acct].instances.append(iid)
        out.append(pr)

    batch_jobs = (
        ("nightly-etl-role", ACCOUNTS[1], ("acme-datalake-raw",), ("acme-datalake-curated",), "ecs"),
        ("log-compaction-role", ACCOUNTS[0], ("acme-prod-app-logs",), ("acme-prod-app-logs",), "ec2"),
        ("feature-build-role", ACCOUNTS[1], ("acme-datalake-curated",), ("acme-ml-artifacts",), "ecs"),
        ("db-backup-role", ACCOUNTS[0], ("acme-prod-user-uploads",), ("acme-prod-db-backups",), "ecs"),
    )
    for i in range(counts["batch"]):
        role_name, acct, reads, writes, runtime = batch_jobs[i % len(batch_jobs)]
        if i >= len(batch_jobs):
            role_name += f"-{i}"
        role_arn, role_id = _role(acct, role_name)
        iid = "i-0" + _hex(p.seed, "batch", i, n=16)
        stable = runtime == "ec2"
        pr = _Principal(
            key=f"batch/{acct}/{role_name}", kind="batch", name=role_name, account_id=acct, region="us-east-1",
            itype="AssumedRole", arn=f"arn:aws:sts::{acct}:assumed-role/{role_name}/{iid}" if stable else role_arn,
            principal_id=f"{role_id}:{iid}" if stable else "", role_name=role_name, role_arn=role_arn,
            role_id=role_id, session=iid if stable else "",
        )
        pr.buckets, pr.write_buckets = reads, writes
        pr.hour = 1.0 + (i % 3) * 0.75 + rng.uniform(0, 0.25)
        pr.batch_size = rng.randint(2000, 5000)
        pr.sdk_ua = rng.choice((_SDK_UAS[0], _SDK_UAS[3]))
        pr.nat_ip = _ip(rng, rng.choice(_AWS_NETS["us-east-1"]))
        pr.private_ip = f"10.3.{rng.randint(0, 15)}.{rng.randint(2, 254)}"
        pr.vpce = "vpce-0" + _hex(acct, "vpce", n=16)
        if i == 0 and p.days >= 4:  # a job that starts reading one more bucket (new feature), not an attack
            pr.new_bucket, pr.new_bucket_day = "acme-analytics-scratch", rng.randrange(2, p.days)
        if stable:
            world.names[acct].instances.append(iid)
        out.append(pr)

    repos = ("orders-api", "web-frontend", "infra", "data-pipelines", "search-service", "mobile-backend")
    for i in range(counts["deploy"]):
        acct = ACCOUNTS[0] if i % 3 != 2 else ACCOUNTS[1]
        repo = repos[i % len(repos)] + (f"-{i}" if i >= len(repos) else "")
        role_name = f"github-deploy-{repo}"
        role_arn, role_id = _role(acct, role_name)
        pr = _Principal(
            key=f"deploy/{acct}/{repo}", kind="deploy", name=role_name, account_id=acct, region="us-east-1",
            itype="AssumedRole", arn=f"arn:aws:sts::{acct}:assumed-role/{role_name}/GitHubActions",
            principal_id=f"{role_id}:GitHubActions", role_name=role_name, role_arn=role_arn, role_id=role_id,
            session="GitHubActions", repo=f"acme-corp/{repo}",
        )
        pr.write_buckets = ("acme-prod-build-artifacts",) if acct == ACCOUNTS[0] else ("acme-ml-artifacts",)
        pr.rate = rng.uniform(0.4, 0.8)  # chance of deploying on a weekday
        pr.sdk_ua = _GH_RUNNER_UA
        out.append(pr)

    for _ in range(counts["service_user"]):
        acct = ACCOUNTS[0]
        user = "svc-onprem-reporting"
        pr = _Principal(
            key=f"service_user/{acct}/{user}", kind="service_user", name=user, account_id=acct, region="us-east-1",
            itype="IAMUser", arn=f"arn:aws:iam::{acct}:user/{user}", principal_id="AIDA" + _token(acct, user, n=17),
            access_key="AKIA" + _token(acct, user, "key"),
        )
        pr.ips = ("198.18.44.17",)
        pr.buckets = ("acme-prod-app-logs",)
        pr.write_buckets = ("acme-prod-app-logs",)
        pr.sdk_ua = _boto_ua("1.26.137", ("linux", "4.18.0-513.el8.x86_64", "x86_64"), "", "3.9.18")
        world.names[acct].users.append(user)
        out.append(pr)

    for svc in ("cloudtrail.amazonaws.com", "config.amazonaws.com", "lambda.amazonaws.com",
                "ecs-tasks.amazonaws.com", "ec2.amazonaws.com"):
        out.append(_Principal(key=f"aws_service/{svc}", kind="aws_service", name=svc, account_id="",
                              region="us-east-1", itype="AWSService", arn=svc))

    for pr in out:
        world.by_kind[pr.kind].append(pr)
        if pr.role_name:
            world.names[pr.account_id].roles.append(pr.role_name)
    for acct in ACCOUNTS:  # shared SSO roles appear once each
        world.names[acct].roles = list(dict.fromkeys(world.names[acct].roles))
        if not world.names[acct].users:
            world.names[acct].users.append("break-glass-admin")
        if not world.names[acct].functions:
            world.names[acct].functions.append("log-forwarder")
        if not world.names[acct].instances:
            world.names[acct].instances.append("i-0" + _hex(acct, "bastion", n=16))
    return world


def roster(p: SimulationPlan) -> list[dict[str, Any]]:
    """The simulated principals (name, kind, userIdentity type, arn, role_arn, account, first day).

    ``arn`` is the ``userIdentity.arn`` events carry when it is stable (people, Lambda functions,
    EC2 instances, deploy roles); for ECS tasks and batch tasks whose session name rotates, it is
    the role ARN. AWS service callers have no ARN: ``arn`` is the service principal name.
    """
    return [pr.entry() for pr in _build_world(p).principals]


# ---------------------------------------------------------------------------------------------
# Event construction: one place that knows the record shapes
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Caller:
    """Who is calling, from where, with which credentials: the parts of an event a session fixes."""

    pr: _Principal
    itype: str
    account_id: str
    ip: str
    ua: str
    region: str
    principal_id: str = ""
    arn: str = ""
    access_key: str = ""
    created: str = ""
    mfa: str = "false"
    issuer: tuple[str, str, str] | None = None  # (principalId, arn, userName) of the role
    ec2: bool = False
    web_provider: str = ""
    invoked_by: str = ""
    user_name: str = ""
    console: bool = False
    s3_ip: str = ""  # private address when S3 is reached through a VPC endpoint
    vpce: str = ""

    def identity(self) -> dict[str, Any]:
        if self.itype == "AWSService":
            return {"type": "AWSService", "invokedBy": self.invoked_by}
        ui: dict[str, Any] = {"type": self.itype, "principalId": self.principal_id, "arn": self.arn,
                              "accountId": self.account_id}
        if self.access_key:
            ui["accessKeyId"] = self.access_key
        if self.itype == "IAMUser":
            ui["userName"] = self.user_name
            if self.created:  # console sessions of IAM users carry an empty issuer
                ui["sessionContext"] = {
                    "sessionIssuer": {},
                    "webIdFederationData": {},
                    "attributes": {"creationDate": self.created, "mfaAuthenticated": self.mfa},
                }
        elif self.issuer is not None:
            web: dict[str, Any] = {}
            if self.web_provider:
                web = {"federatedProvider": self.web_provider, "attributes": {}}
            ctx: dict[str, Any] = {
                "sessionIssuer": {"type": "Role", "principalId": self.issuer[0], "arn": self.issuer[1],
                                  "accountId": self.account_id, "userName": self.issuer[2]},
                "webIdFederationData": web,
                "attributes": {"creationDate": self.created, "mfaAuthenticated": self.mfa},
            }
            if self.ec2:
                ctx["ec2RoleDelivery"] = "2.0"
            ui["sessionContext"] = ctx
        if self.invoked_by:
            ui["invokedBy"] = self.invoked_by
        return ui


def _caller(pr: _Principal, *, ip: str, ua: str, key: str = "", created: float | None = None,
            session: str = "", region: str = "", console: bool = False, mfa: bool = False) -> _Caller:
    """A caller for ``pr``; ``session`` overrides the role session name (ECS task id, batch task)."""
    c = _Caller(pr=pr, itype=pr.itype, account_id=pr.account_id, ip=ip, ua=ua, region=region or pr.region,
                access_key=key, created=_iso(created) if created is not None else "",
                mfa="true" if mfa else "false", console=console)
    if pr.itype == "IAMUser":
        c.principal_id, c.arn, c.user_name = pr.principal_id, pr.arn, pr.name
    elif pr.itype == "AssumedRole":
        name = session or pr.session or pr.name
        c.principal_id = f"{pr.role_id}:{name}"
        c.arn = f"arn:aws:sts::{pr.account_id}:assumed-role/{pr.role_name}/{name}"
        c.issuer = (pr.role_id, pr.role_arn, pr.role_name)
        c.ec2 = pr.kind == "ec2_instance" or (pr.kind == "batch" and bool(pr.session))
        if pr.kind == "deploy":
            c.web_provider = f"arn:aws:iam::{pr.account_id}:oidc-provider/token.actions.githubusercontent.com"
    else:
        c.invoked_by = pr.name
    return c


def _service_prefix(api: _Api) -> str:
    return api.key.split(":", 1)[0]


_VERSION_SUFFIX = re.compile(r"\d{8}(v\d)?$")


def _denied(c: _Caller, api: _Api, region: str) -> tuple[str, str]:
    prefix = _service_prefix(api)
    action = f"{prefix}:{_VERSION_SUFFIX.sub('', api.name)}"
    if prefix == "s3":
        return "AccessDenied", "Access Denied"
    tail = (f"User: {c.arn} is not authorized to perform: {action} because no identity-based policy allows "
            f"the {action} action")
    if prefix == "ec2":
        return "Client.UnauthorizedOperation", f"You are not authorized to perform this operation. {tail}"
    if prefix in ("iam", "sts", "cloudtrail", "secretsmanager"):
        return "AccessDenied", tail
    return "AccessDeniedException", tail


def _host(prefix: str, region: str) -> str:
    if prefix in ("iam", "route53"):
        return f"{prefix}.amazonaws.com"
    if prefix == "s3":
        return "s3.amazonaws.com"
    if prefix == "cloudwatch":
        return f"monitoring.{region}.amazonaws.com"
    return f"{prefix}.{region}.amazonaws.com"


class _Draw:
    """Marker: draw the catalogue's usual requestParameters for the call."""


_DRAW = _Draw()


def _mgmt(
    rng: random.Random,
    w: _World,
    c: _Caller,
    t: float,
    key: str,
    *,
    params: dict[str, Any] | _Draw | None = _DRAW,
    response: dict[str, Any] | None = None,
    resources: list[dict[str, Any]] | None = None,
    error: tuple[str, str] | None = None,
    deny: bool = False,
    region: str = "",
    ua: str = "",
    additional: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A management event; by default requestParameters are drawn from the catalogue."""
    api = _API[key]
    prefix = _service_prefix(api)
    region = "us-east-1" if prefix in _GLOBAL else (region or c.region)
    if deny:
        error = _denied(c, api, region)
    if isinstance(params, _Draw):
        req = api.params(rng, c, w) if api.params is not None else None
    else:
        req = params
    ev: dict[str, Any] = {
        "eventVersion": api.version,
        "userIdentity": c.identity(),
        "eventTime": _iso(t),
        "eventSource": api.source,
        "eventName": api.name,
        "awsRegion": region,
        "sourceIPAddress": c.ip,
        "userAgent": _command_ua(ua or c.ua, api),
    }
    if error:
        ev["errorCode"], ev["errorMessage"] = error
    ev["requestParameters"] = req
    ev["responseElements"] = None if error else response
    if additional:
        ev["additionalEventData"] = additional
    ev["requestID"] = _uuid(rng)
    ev["eventID"] = _uuid(rng)
    ev["readOnly"] = api.read_only
    if resources is None and prefix == "s3" and req and "bucketName" in req:
        resources = [{"accountId": c.account_id, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{req['bucketName']}"}]
    if resources:
        ev["resources"] = resources
    ev["eventType"] = "AwsApiCall"
    ev["managementEvent"] = True
    ev["recipientAccountId"] = c.account_id
    if extra:
        ev.update(extra)
    ev["eventCategory"] = "Management"
    if c.console:
        ev["sessionCredentialFromConsole"] = "true"
    if not c.invoked_by and c.itype != "AWSService":
        host = req["Host"] if prefix == "s3" and req and "Host" in req else _host(prefix, region)
        ev["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                            "clientProvidedHostHeader": host}
    return ev


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@lru_cache(maxsize=1024)
def _cli_command(key: str) -> str:
    prefix, name = key.split(":", 1)
    if prefix == "s3":
        return {"GetObject": "s3.cp", "PutObject": "s3.cp", "ListObjects": "s3.ls", "DeleteObject": "s3.rm",
                "ListBuckets": "s3.ls", "HeadObject": "s3.cp"}.get(name, f"s3api.{_CAMEL.sub('-', name).lower()}")
    return f"{prefix}.{_CAMEL.sub('-', _VERSION_SUFFIX.sub('', name)).lower()}"


def _command_ua(ua: str, api: _Api) -> str:
    return ua.replace("{command}", _cli_command(api.key)) if "{command}" in ua else ua


def _s3(
    rng: random.Random,
    c: _Caller,
    t: float,
    op: str,
    bucket: _Bucket,
    key: str,
    *,
    size: int = 0,
    error: tuple[str, str] | None = None,
    ua: str = "",
    command: str = "",
) -> dict[str, Any]:
    """An S3 data event (object-level call) against ``bucket``."""
    ua = ua or c.ua
    if "{command}" in ua:
        ua = ua.replace("{command}", command or _cli_command(f"s3:{op}"))
    if op == "ListObjects":
        req: dict[str, Any] = {"list-type": "2", "bucketName": bucket.name, "encoding-type": "url",
                               "prefix": key, "delimiter": "/", "Host": bucket.host}
        obj = {"type": "AWS::S3::Object", "ARNPrefix": f"arn:aws:s3:::{bucket.name}/{key}"}
    else:
        req = {"bucketName": bucket.name, "Host": bucket.host, "key": key}
        obj = {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket.name}/{key}"}
    reads = op in ("GetObject", "HeadObject", "ListObjects")
    out_bytes = 243 if error else (size if op == "GetObject" else (size // 1000 + 300 if op == "ListObjects" else 0))
    ev: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": c.identity(),
        "eventTime": _iso(t),
        "eventSource": "s3.amazonaws.com",
        "eventName": op,
        "awsRegion": bucket.region,
        "sourceIPAddress": c.s3_ip or c.ip,
        "userAgent": f"[{ua}]",
    }
    if error:
        ev["errorCode"], ev["errorMessage"] = error
    ev["requestParameters"] = req
    ev["responseElements"] = None
    ev["additionalEventData"] = {
        "SignatureVersion": "SigV4",
        "CipherSuite": "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn": 0 if reads or error else size,
        "SSEApplied": "Default_SSE_S3",
        "AuthenticationMethod": "AuthHeader",
        "x-amz-id-2": _amz_id_2(rng),
        "bytesTransferredOut": out_bytes,
    }
    ev["requestID"] = _s3_request_id(rng)
    ev["eventID"] = _uuid(rng)
    ev["readOnly"] = reads
    ev["resources"] = [obj, {"accountId": bucket.account_id, "type": "AWS::S3::Bucket",
                             "ARN": f"arn:aws:s3:::{bucket.name}"}]
    ev["eventType"] = "AwsApiCall"
    ev["managementEvent"] = False
    ev["recipientAccountId"] = bucket.account_id
    if c.vpce:
        ev["vpcEndpointId"] = c.vpce
        ev["vpcEndpointAccountId"] = bucket.account_id
    ev["eventCategory"] = "Data"
    ev["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                        "clientProvidedHostHeader": bucket.host}
    return ev


_DATASETS = ("clickstream", "orders", "payments", "sessions", "inventory", "shipments")


@lru_cache(maxsize=4096)
def _yesterday(day: int) -> time.struct_time:
    return time.gmtime((day - 1) * _DAY)


def _object_key(rng: random.Random, bucket: _Bucket, t: float, i: int = -1) -> str:
    """A key in ``bucket``'s layout; ``i`` numbers parts of one batch, -1 draws one."""
    g = _yesterday(int(t // _DAY))  # most reads are of yesterday's partition
    n = i if i >= 0 else rng.randrange(2000)
    shape = bucket.shape
    if shape == "parquet":
        ds = _DATASETS[n % len(_DATASETS)] if i >= 0 else rng.choice(_DATASETS)
        return (f"{ds}/year={g.tm_year}/month={g.tm_mon:02d}/day={g.tm_mday:02d}/"
                f"part-{n:05d}-{_hex(bucket.name, ds, g.tm_yday, n=8)}-c000.snappy.parquet")
    if shape == "logs":
        return f"app/{g.tm_year}/{g.tm_mon:02d}/{g.tm_mday:02d}/{rng.randrange(24):02d}/app-{n:06d}.log.gz"
    if shape == "exports":
        ent = ("customers", "orders", "payments", "addresses")[n % 4]
        return f"exports/{ent}/{g.tm_year}-{g.tm_mon:02d}-{g.tm_mday:02d}/{ent}_{n:05d}.csv.gz"
    if shape == "backups":
        return f"postgres/orders-db/{g.tm_year}-{g.tm_mon:02d}-{g.tm_mday:02d}T0200Z/base/{n:08d}.tar.zst"
    if shape == "reports":
        name = ("pnl", "forecast", "payroll-summary", "ar-aging")[n % 4]
        return f"reports/{g.tm_year}/Q{(g.tm_mon - 1) // 3 + 1}/{name}-{n:04d}.xlsx"
    if shape == "payroll":
        return f"payroll/{g.tm_year}-{g.tm_mon:02d}/employee_{n:05d}.pdf"
    if shape == "uploads":
        return f"user-uploads/{_hex(bucket.name, n, n=8)}/{('avatar.jpg', 'invoice.pdf', 'photo.png')[n % 3]}"
    if shape == "assets":
        folder, ext = (("js", "js"), ("css", "css"), ("img", "png"))[n % 3]
        return f"static/{folder}/{('main', 'vendor', 'app', 'logo')[n % 4]}.{_hex(n, n=8)}.{ext}"
    if shape == "artifacts":
        return f"builds/{rng.choice(('orders-api', 'web-frontend', 'infra'))}/{_hex(bucket.name, n, n=12)}/bundle.zip"
    if shape == "models":
        return f"models/{('churn', 'ranking', 'fraud')[n % 3]}/v{n % 40}/model.tar.gz"
    if shape == "csv":
        return f"scratch/{rng.choice(_FIRST)}/{('query', 'export', 'sample')[n % 3]}-{n:04d}.csv"
    if shape == "documents":
        return f"contracts/{g.tm_year}/{_hex(bucket.name, n, n=10)}.pdf"
    return (f"AWSLogs/{bucket.account_id}/CloudTrail/us-east-1/{g.tm_year}/{g.tm_mon:02d}/{g.tm_mday:02d}/"
            f"{n:06d}.json.gz")


def _size(rng: random.Random, bucket: _Bucket) -> int:
    return max(64, int(rng.lognormvariate(math.log(bucket.median_bytes), 0.8)))


# ---------------------------------------------------------------------------------------------
# Benign behaviour, one principal-day at a time
# ---------------------------------------------------------------------------------------------

_Out = list[tuple[float, dict[str, Any]]]
# relative activity of customer-facing services by UTC hour (US business day peaks)
_DIURNAL = (0.45, 0.38, 0.32, 0.28, 0.25, 0.25, 0.28, 0.33, 0.40, 0.48, 0.55, 0.62,
            0.72, 0.82, 0.92, 1.00, 1.00, 0.98, 0.94, 0.88, 0.80, 0.70, 0.60, 0.52)


def _weekday(p: SimulationPlan, d: int) -> int:
    return time.gmtime(p.start + d * _DAY).tm_wday


def _role_key(p: SimulationPlan, pr: _Principal, t: float, period: int) -> tuple[str, float]:
    """Access key id and creation time of a role's credentials valid at ``t`` (rotated every ``period`` s)."""
    phase = _digest(pr.key, "phase") % period
    block = int((t - phase) // period)
    return "ASIA" + _token(p.seed, pr.key, block), block * period + phase


def _vend(rng: random.Random, w: _World, pr: _Principal, t: float, session: str, service: str, key: str,
          duration: int) -> dict[str, Any]:
    """The sts:AssumeRole an AWS service makes to hand a role's credentials to a function/task/instance."""
    svc = next(s for s in w.by_kind["aws_service"] if s.name == service)
    c = _caller(svc, ip=service, ua=service, region=pr.region)
    c.account_id = pr.account_id
    return _mgmt(
        rng, w, c, t, "sts:AssumeRole",
        params={"roleArn": pr.role_arn, "roleSessionName": session, "durationSeconds": duration},
        response={"credentials": {"accessKeyId": key, "expiration": _expiration(t + duration)}},
        resources=[{"accountId": pr.account_id, "type": "AWS::IAM::Role", "ARN": pr.role_arn}],
        extra={"sharedEventID": _uuid(rng)},
    )


def _rotation(p: SimulationPlan, pr: _Principal, slot: float, period: int) -> tuple[str, float] | None:
    """The key issued during the hour starting at ``slot``, if the role's credentials rotate in it."""
    key, created = _role_key(p, pr, slot + _HOUR - 1, period)
    return (key, created) if created >= slot else None


def _travel_ip(rng: random.Random) -> str:
    return _ip(rng, rng.choice(("172.58", "174.204", "37.120", "92.40", "185.107", "31.94", "100.36", "66.249")))


def _human_day(rng: random.Random, w: _World, pr: _Principal, d: int, out: _Out) -> None:
    p = w.plan
    if d < pr.first_day:
        return
    day0 = p.start + d * _DAY
    weekday = _weekday(p, d)
    spans: list[tuple[float, float]] = []
    if weekday < 5:
        if rng.random() < 0.06 and d != pr.first_day:  # leave, sick day, offsite
            return
        a = pr.work[0] + rng.gauss(0, 0.35)
        spans.append((a, max(a + 1, pr.work[1] + rng.gauss(0, 0.5))))
        if rng.random() < 0.05:  # evening check of a deploy or an alarm
            a = rng.uniform(20.5, 22.5)
            spans.append((a, a + rng.uniform(0.2, 0.8)))
    elif rng.random() < 0.06:
        a = rng.uniform(10, 20)
        spans.append((a, a + rng.uniform(0.3, 1.5)))
    if not spans:
        return
    ip = pr.ips[0] if len(pr.ips) == 1 else rng.choices(pr.ips, cum_weights=pr.ip_cum)[0]
    if weekday >= 5 or spans[0][0] > 20:
        ip = pr.ips[1]
    if rng.random() < pr.travel_p:  # conference, client visit: one day from an unseen address
        ip = _travel_ip(rng)
    t_first = day0 + (spans[0][0] - pr.tz) * _HOUR
    cli_ua = pr.cli_ua_new if 0 <= pr.upgrade_day <= d else pr.cli_ua
    mfa = pr.itype == "IAMUser"
    console = _caller(pr, ip=ip, ua=pr.browser_ua, key="ASIA" + _token(p.seed, pr.key, d, "console"),
                      created=t_first - 20, console=True, mfa=mfa)
    cli_key = pr.access_key or "ASIA" + _token(p.seed, pr.key, d, "cli")
    cli = _caller(pr, ip=ip, ua=cli_ua, key=cli_key, created=None if pr.access_key else t_first - 30)
    logged_in = False
    for a, b in spans:
        ta, tb = day0 + (a - pr.tz) * _HOUR, day0 + (b - pr.tz) * _HOUR
        slot = ta
        while slot < tb:
            end = min(slot + _HOUR, tb)
            local = ((slot - day0) / _HOUR + pr.tz) % 24
            lam = pr.rate * (end - slot) / _HOUR * (0.5 if 12 <= local < 13 else 1.0)
            if d == pr.first_day and pr.starter:
                lam *= 1.5  # a new starter explores
            for _ in range(_poisson(rng, lam)):
                t = rng.uniform(slot, end)
                in_console = rng.random() < pr.console
                if in_console and not logged_in:  # the day's console session starts with a sign-in
                    out.append((t_first - 20, _console_login(rng, w, console, t_first - 20)))
                    logged_in = True
                _human_action(rng, w, pr, console if in_console else cli, t, out)
            slot = end
    span_a, span_b = day0 + (spans[0][0] - pr.tz) * _HOUR, day0 + (spans[0][1] - pr.tz) * _HOUR
    if rng.random() < 0.05:  # tries an API outside the usual set
        t = rng.uniform(span_a, span_b)
        key = rng.choice([k for k in _RECON_APIS if k not in pr.apis])
        for _ in range(rng.randint(1, 3)):
            t += rng.uniform(2, 40)
            out.append((t, _mgmt(rng, w, cli, t, key, deny=rng.random() < 0.3)))
    if pr.persona == "data" and pr.buckets and rng.random() < 0.05:
        # a dataset pulled to a laptop with `aws s3 sync`: a benign burst on a bucket already read
        bucket = w.buckets[pr.buckets[0]]
        t = rng.uniform(span_a, span_b)
        for i in range(rng.randint(50, 400)):
            t += rng.expovariate(2.0)
            key = _object_key(rng, bucket, t, i)
            out.append((t, _s3(rng, cli, t, "GetObject", bucket, key, size=_size(rng, bucket), command="s3.sync")))


def _console_login(rng: random.Random, w: _World, c: _Caller, t: float) -> dict[str, Any]:
    ident = c.identity()
    if c.itype == "IAMUser":  # a password sign-in has neither a key nor a session yet
        ident.pop("accessKeyId", None)
        ident.pop("sessionContext", None)
    return {
        "eventVersion": "1.09",
        "userIdentity": ident,
        "eventTime": _iso(t),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": c.ip,
        "userAgent": c.ua,
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_"
            + _hex(c.arn, t, n=16),
            "MobileVersion": "No",
            "MFAUsed": "Yes" if c.mfa == "true" else "No",
        },
        "eventID": _uuid(rng),
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": c.account_id,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": "signin.aws.amazon.com"},
    }


def _human_action(rng: random.Random, w: _World, pr: _Principal, c: _Caller, t: float, out: _Out) -> None:
    if pr.buckets and rng.random() < pr.s3_share:
        bucket = w.buckets[rng.choice(pr.buckets)]
        key = _object_key(rng, bucket, t)
        out.append((t, _s3(rng, c, t, "ListObjects", bucket, key.rsplit("/", 1)[0] + "/")))
        for _ in range(rng.randint(1, 4)):
            t += rng.uniform(1, 20)
            denied = rng.random() < pr.error_rate
            out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t), size=_size(rng, bucket),
                               error=("AccessDenied", "Access Denied") if denied else None)))
        return
    key = rng.choices(pr.apis, cum_weights=pr.api_cum)[0]
    calls = rng.randint(1, 4) if c.console else rng.choice((1, 1, 1, 2))
    region = pr.region if rng.random() < 0.93 else ("eu-west-1" if pr.region == "us-east-1" else "us-east-1")
    for i in range(calls):
        if i:
            t += rng.uniform(0.2, 3)
            same_service = [k for k in pr.apis if k.split(":")[0] == key.split(":")[0]]
            key = rng.choice(same_service)
        ua = "AWS Internal" if c.console and rng.random() < 0.08 else ""
        out.append((t, _mgmt(rng, w, c, t, key, deny=rng.random() < pr.error_rate, region=region, ua=ua)))


def _bucket_for(w: _World, pr: _Principal, d: int, rng: random.Random) -> _Bucket:
    names = pr.buckets
    if pr.new_bucket and 0 <= pr.new_bucket_day <= d and rng.random() < 0.3:
        return w.buckets[pr.new_bucket]
    return w.buckets[rng.choice(names)]


def _workload_call(rng: random.Random, w: _World, pr: _Principal, c: _Caller, t: float, d: int, out: _Out) -> None:
    """One unit of an application's work: an S3 read/write, a KMS decrypt, a secret or parameter read."""
    r = rng.random()
    err = rng.random() < pr.error_rate
    if r < 0.40 and pr.buckets:
        bucket = _bucket_for(w, pr, d, rng)
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t), size=_size(rng, bucket),
                           error=("NoSuchKey", "The specified key does not exist.") if err else None)))
    elif r < 0.58 and pr.write_buckets:
        bucket = w.buckets[pr.write_buckets[0]]
        key = _object_key(rng, bucket, t + _DAY)
        out.append((t, _s3(rng, c, t, "PutObject", bucket, key, size=_size(rng, bucket))))
    elif r < 0.85:
        keys = w.names[pr.account_id].kms_keys
        out.append((t, _mgmt(rng, w, c, t, "kms:Decrypt", resources=[
            {"accountId": pr.account_id, "type": "AWS::KMS::Key",
             "ARN": f"arn:aws:kms:{c.region}:{pr.account_id}:key/{keys[_digest(pr.key) % len(keys)]}"}])))
    elif r < 0.93:
        secrets = w.names[pr.account_id].secrets
        secret = secrets[_digest(pr.key, "s") % len(secrets)]
        out.append((t, _mgmt(rng, w, c, t, "secretsmanager:GetSecretValue", params={"secretId": secret})))
    else:
        names = w.names[pr.account_id].parameters
        param = names[_digest(pr.key, "p") % len(names)]
        out.append((t, _mgmt(rng, w, c, t, "ssm:GetParameter", params={"name": param, "withDecryption": True},
                             error=("ThrottlingException", "Rate exceeded") if err else None)))


def _lambda_day(rng: random.Random, w: _World, pr: _Principal, d: int, out: _Out) -> None:
    p = w.plan
    day0 = p.start + d * _DAY
    weekend = 0.6 if _weekday(p, d) >= 5 else 1.0
    period = 14400
    for h in range(24):
        slot = day0 + h * _HOUR
        key, created = _role_key(p, pr, slot, period)
        if rot := _rotation(p, pr, slot, period):
            out.append((rot[1], _vend(rng, w, pr, rot[1], pr.session, "lambda.amazonaws.com", rot[0], period)))
        # a function's outbound address changes with its execution environment, i.e. with its credentials
        by_key = random.Random(key)
        ip = _ip(by_key, by_key.choice(_AWS_NETS.get(pr.region, _AWS_NETS["us-east-1"])))
        c = _caller(pr, ip=ip, ua=pr.sdk_ua, key=key, created=created)
        for _ in range(_poisson(rng, pr.rate * _DIURNAL[h] * weekend)):
            t = rng.uniform(slot, slot + _HOUR)
            _workload_call(rng, w, pr, c, t, d, out)


def _ecs_day(rng: random.Random, w: _World, pr: _Principal, d: int, out: _Out) -> None:
    p = w.plan
    day0 = p.start + d * _DAY
    generation = int((d + _digest(pr.key) % 3) // pr.hour)  # a deployment replaces the task every few days
    task = _hex(p.seed, pr.key, generation, n=32)
    period = 21600
    for h in range(24):
        slot = day0 + h * _HOUR
        key, created = _role_key(p, pr, slot, period)
        if rot := _rotation(p, pr, slot, period):
            out.append((rot[1], _vend(rng, w, pr, rot[1], task, "ecs-tasks.amazonaws.com", rot[0], period)))
        c = _caller(pr, ip=pr.nat_ip, ua=pr.sdk_ua, key=key, created=created, session=task)
        c.s3_ip, c.vpce = pr.private_ip, pr.vpce
        for _ in range(_poisson(rng, pr.rate * (0.6 + 0.4 * _DIURNAL[h]))):
            _workload_call(rng, w, pr, c, rng.uniform(slot, slot + _HOUR), d, out)


def _ec2_day(rng: random.Random, w: _World, pr: _Principal, d: int, out: _Out) -> None:
    p = w.plan
    day0 = p.start + d * _DAY
    period = 21600
    phase = _digest(pr.key, "ssm") % 300
    for h in range(24):
        slot = day0 + h * _HOUR
        key, created = _role_key(p, pr, slot, period)
        if rot := _rotation(p, pr, slot, period):
            out.append((rot[1], _vend(rng, w, pr, rot[1], pr.session, "ec2.amazonaws.com", rot[0], period)))
        c = _caller(pr, ip=pr.nat_ip, ua=pr.sdk_ua, key=key, created=created)
        c.s3_ip, c.vpce = pr.private_ip, pr.vpce
        agent = dataclasses.replace(c, ua=_SSM_AGENT_UA)
        for k in range(12):  # the SSM agent's heartbeat every five minutes
            t = slot + k * 300 + phase + rng.uniform(0, 3)
            out.append((t, _mgmt(rng, w, agent, t, "ssm:UpdateInstanceInformation", params={
                "instanceId": pr.session, "agentVersion": "3.3.1142.0", "agentStatus": "Active",
                "platformType": "Linux", "platformName": "Amazon Linux", "platformVersion": "2023",
                "iPAddress": pr.private_ip, "computerName": f"ip-{pr.private_ip.replace('.', '-')}.ec2.internal",
                "availabilityZone": "us-east-1a", "availabilityZoneId": "use1-az4"})))
            if k % 6 == 1:
                out.append((t + 2, _mgmt(rng, w, agent, t + 2, "ssm:ListInstanceAssociations",
                                         params={"instanceId": pr.session, "maxResults": 50})))
        t = slot + rng.uniform(0, _HOUR)
        out.append((t, _mgmt(rng, w, dataclasses.replace(c, ua=_CW_AGENT_UA), t, "ec2:DescribeTags", params={
            "filterSet": {"items": [{"name": "resource-id", "valueSet": {"items": [{"value": pr.session}]}}]}})))
        for _ in range(_poisson(rng, pr.rate * (0.7 + 0.3 * _DIURNAL[h]))):
            _workload_call(rng, w, pr, c, rng.uniform(slot, slot + _HOUR), d, out)


def _batch_day(rng: random.Random, w: _World, pr: _Principal, d: int, out: _Out) -> None:
    """A nightly job at a fixed hour: list the input partition, read thousands of objects, write results."""
    p = w.plan
    t = p.start + d * _DAY + pr.hour * _HOUR + rng.uniform(-180, 180)
    task = pr.session or _hex(p.seed, pr.key, d, n=32)
    if pr.session:  # a long-lived worker instance
        key, created = _role_key(p, pr, t, 21600)
    else:  # a fresh Batch/ECS task each night gets fresh credentials
        key, created = "ASIA" + _token(p.seed, pr.key, d), t - 5
        out.append((t - 5, _vend(rng, w, pr, t - 5, task, "ecs-tasks.amazonaws.com", key, 21600)))
    c = _caller(pr, ip=pr.nat_ip, ua=pr.sdk_ua, key=key, created=created, session=task)
    c.s3_ip, c.vpce = pr.private_ip, pr.vpce
    n = int(pr.batch_size * rng.uniform(0.85, 1.15))
    source = w.buckets[pr.buckets[0]]
    ds = rng.choice(_DATASETS)
    g = time.gmtime(t - _DAY)
    prefix = f"{ds}/year={g.tm_year}/month={g.tm_mon:02d}/day={g.tm_mday:02d}/"
    rate = n / rng.uniform(1200, 2400)
    for _ in range(n // 1000 + 1):
        t += rng.uniform(0.2, 1.0)
        out.append((t, _s3(rng, c, t, "ListObjects", source, prefix if source.shape == "parquet" else "app/")))
    for i in range(n):
        t += rng.expovariate(rate)
        bucket = source
        if pr.new_bucket and 0 <= pr.new_bucket_day <= d and i % 10 == 0:
            bucket = w.buckets[pr.new_bucket]
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=_size(rng, bucket))))
    sink = w.buckets[pr.write_buckets[0]]
    for i in range(rng.randint(10, 60)):
        t += rng.uniform(0.5, 4)
        out.append((t, _s3(rng, c, t, "PutObject", sink, _object_key(rng, sink, t + _DAY, i), size=_size(rng, sink))))


def _deploy_day(rng: random.Random, w: _World, pr: _Principal, d: int, out: _Out) -> None:
    """GitHub Actions runs: OIDC token exchange, then a push to ECR and a CloudFormation update."""
    p = w.plan
    if _weekday(p, d) >= 5 or rng.random() > pr.rate:
        return
    for _run in range(rng.choice((1, 1, 2))):
        t = p.start + d * _DAY + rng.uniform(13, 22) * _HOUR
        ip = _ip(rng, rng.choice(_GH_NETS))
        provider = f"arn:aws:iam::{pr.account_id}:oidc-provider/token.actions.githubusercontent.com"
        subject = f"repo:{pr.repo}:ref:refs/heads/main"
        key = "ASIA" + _token(p.seed, pr.key, t)
        web = _Caller(pr=pr, itype="WebIdentityUser", account_id=pr.account_id, ip=ip, ua=_GH_OIDC_UA, region=pr.region)
        ev = _mgmt(
            rng, w, web, t, "sts:AssumeRoleWithWebIdentity",
            params={"roleArn": pr.role_arn, "roleSessionName": "GitHubActions", "durationSeconds": 3600},
            response={
                "credentials": {"accessKeyId": key, "expiration": _expiration(t + 3600)},
                "subjectFromWebIdentityToken": subject,
                "assumedRoleUser": {"assumedRoleId": pr.principal_id, "arn": pr.arn},
                "provider": provider,
                "audience": "sts.amazonaws.com",
            },
            resources=[{"accountId": pr.account_id, "type": "AWS::IAM::Role", "ARN": pr.role_arn}],
            additional={"identityProviderConnectionVerificationMethod": "IAMTrustStore"},
        )
        ev["userIdentity"] = {"type": "WebIdentityUser", "principalId": f"{provider}:sts.amazonaws.com:{subject}",
                              "userName": subject, "identityProvider": provider}
        out.append((t, ev))
        c = _caller(pr, ip=ip, ua=_GH_RUNNER_UA, key=key, created=t)
        c.web_provider = provider
        steps = ["sts:GetCallerIdentity", "ecr:GetAuthorizationToken"]
        steps += ["ecr:BatchCheckLayerAvailability"] * rng.randint(2, 8)
        for _layer in range(rng.randint(1, 4)):
            parts = ["ecr:UploadLayerPart"] * rng.randint(1, 6)
            steps += ["ecr:InitiateLayerUpload", *parts, "ecr:CompleteLayerUpload"]
        steps += ["ecr:PutImage", "cloudformation:DescribeStacks", "cloudformation:CreateChangeSet"]
        steps += ["cloudformation:DescribeChangeSet"] * rng.randint(2, 6) + ["cloudformation:ExecuteChangeSet"]
        steps += ["cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents"] * rng.randint(5, 25)
        for key_ in steps:
            t += rng.uniform(0.3, 6)
            out.append((t, _mgmt(rng, w, c, t, key_)))
        # CloudFormation then acts with the same role's session: invokedBy, service address and agent
        cfn = dataclasses.replace(c, ip="cloudformation.amazonaws.com", ua="cloudformation.amazonaws.com",
                                  invoked_by="cloudformation.amazonaws.com")
        for key_ in ("iam:GetRole", "ecs:RegisterTaskDefinition", "ecs:UpdateService", "ecs:DescribeServices",
                     "lambda:UpdateFunctionCode20150331v2", "lambda:GetFunction20150331v2"):
            t += rng.uniform(0.5, 10)
            out.append((t, _mgmt(rng, w, cfn, t, key_)))
        sink = w.buckets[pr.write_buckets[0]]
        t += rng.uniform(1, 5)
        out.append((t, _s3(rng, c, t, "PutObject", sink, _object_key(rng, sink, t), size=_size(rng, sink))))


def _service_user_day(rng: random.Random, w: _World, pr: _Principal, d: int, out: _Out) -> None:
    """A legacy on-premises script with a long-lived access key: every 15 minutes, day and night."""
    p = w.plan
    c = _caller(pr, ip=pr.ips[0], ua=pr.sdk_ua, key=pr.access_key)
    bucket = w.buckets[pr.buckets[0]]
    for k in range(96):
        t = p.start + d * _DAY + k * 900 + rng.uniform(0, 20)
        out.append((t, _s3(rng, c, t, "ListObjects", bucket, "app/")))
        for i in range(rng.randint(1, 3)):
            t += rng.uniform(0.1, 2)
            key = _object_key(rng, bucket, t, i)
            out.append((t, _s3(rng, c, t, "GetObject", bucket, key, size=_size(rng, bucket))))


def _aws_service_day(rng: random.Random, w: _World, pr: _Principal, d: int, out: _Out) -> None:
    """CloudTrail and Config checking their delivery buckets; credential vending is emitted by the roles."""
    p = w.plan
    if pr.name not in ("cloudtrail.amazonaws.com", "config.amazonaws.com"):
        return
    every = 900 if pr.name.startswith("cloudtrail") else 3600
    for acct in ACCOUNTS:
        bucket = w.buckets[_TRAIL_BUCKET[acct] if pr.name.startswith("cloudtrail") else f"config-bucket-{acct}"]
        c = _caller(pr, ip=pr.name, ua=pr.name)
        c.account_id = acct
        for k in range(_DAY // every):
            t = p.start + d * _DAY + k * every + rng.uniform(0, every / 3)
            out.append((t, _mgmt(rng, w, c, t, "s3:GetBucketAcl",
                                 params={"bucketName": bucket.name, "Host": bucket.host, "acl": ""})))
            if pr.name.startswith("config") and k % 6 == 0:
                g = time.gmtime(t)
                key = (f"AWSLogs/{acct}/Config/us-east-1/{g.tm_year}/{g.tm_mon}/{g.tm_mday}/"
                       f"ConfigSnapshot/{acct}_Config_us-east-1_ConfigSnapshot_{_hex(acct, t, n=12)}.json.gz")
                out.append((t + 1, _s3(rng, c, t + 1, "PutObject", bucket, key, size=_size(rng, bucket))))


_DAY_GENERATORS: dict[str, Callable[[random.Random, _World, _Principal, int, _Out], None]] = {
    "human_sso": _human_day,
    "human_iam_user": _human_day,
    "lambda": _lambda_day,
    "ecs_task": _ecs_day,
    "ec2_instance": _ec2_day,
    "batch": _batch_day,
    "deploy": _deploy_day,
    "service_user": _service_user_day,
    "aws_service": _aws_service_day,
}


# ---------------------------------------------------------------------------------------------
# Attacks
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Attack:
    scenario: str
    victim: _Principal
    events: _Out


def _pick_time(rng: random.Random, p: SimulationPlan, duration: float, tz: float,
               local_hours: tuple[float, float] | None) -> float:
    """A start inside the test window so the whole attack fits; at the victim's local hours if it can."""
    lo, hi = p.test_start + 600, p.end - duration - 600
    if hi <= lo:
        raise ConfigError(f"the test window is too short for a {duration / 3600:.1f} h scenario; use more test_days")
    if local_hours is not None:
        for _ in range(40):
            day = rng.randrange(p.history_days - 1, p.days + 1)
            t = p.start + day * _DAY + (rng.uniform(*local_hours) - tz) * _HOUR
            if lo <= t <= hi:
                return t
    return rng.uniform(lo, hi)


def _is_human(pr: _Principal) -> bool:
    return pr.kind in ("human_sso", "human_iam_user")


def _attack_caller(rng: random.Random, p: SimulationPlan, pr: _Principal, t: float, *, new_ip: bool,
                   ua: str = "") -> _Caller:
    """The victim's identity as the attacker presents it: a session of theirs, maybe from elsewhere."""
    if _is_human(pr):
        ip = _ip(rng, rng.choice(_ATTACK_NETS)) if new_ip else pr.ips[-1]
        key = pr.access_key or "ASIA" + _token(p.seed, pr.key, t, "attack")
        created = None if pr.access_key else t - rng.uniform(60, 900)
        return _caller(pr, ip=ip, ua=ua or pr.cli_ua, key=key, created=created)
    key, created = _role_key(p, pr, t, 21600 if pr.kind == "ec2_instance" else 14400)
    if new_ip:
        return _caller(pr, ip=_ip(rng, rng.choice(_ATTACK_NETS)), ua=ua or pr.sdk_ua, key=key, created=created)
    # abused from inside: the workload's own address (and VPC endpoint for S3)
    ip = pr.nat_ip or _ip(random.Random(key), _AWS_NETS["us-east-1"][0])
    c = _caller(pr, ip=ip, ua=ua or pr.sdk_ua, key=key, created=created)
    c.s3_ip, c.vpce = pr.private_ip, pr.vpce
    return c


def _unread_bucket(rng: random.Random, w: _World, pr: _Principal, sensitive: bool) -> _Bucket:
    options = [b for b in _BUCKETS if b.account_id == pr.account_id and b.name not in pr.buckets
               and b.sensitive == sensitive and b.shape != "trail"]
    return rng.choice(options)


def _bulk_exfiltration(rng: random.Random, w: _World, pr: _Principal) -> _Out:
    p, out = w.plan, []
    hours = (9.5, 17.0) if _is_human(pr) else None
    t = _pick_time(rng, p, 1800, pr.tz, hours)
    new_ip = rng.random() < 0.6 or not _is_human(pr)
    c = _attack_caller(rng, p, pr, t, new_ip=new_ip, ua=rng.choice(_ATTACK_UAS[1:]) if new_ip else "")
    bucket = _unread_bucket(rng, w, pr, sensitive=True)
    n = rng.randint(2500, 4000)
    rate = n / rng.uniform(480, 840)
    for page in range(n // 1000 + 1):
        t += rng.uniform(0.3, 1.5)
        prefix = "" if page == 0 else bucket.shape + "/"
        out.append((t, _s3(rng, c, t, "ListObjects", bucket, prefix, command="s3.sync")))
    for i in range(n):
        t += rng.expovariate(rate)
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i),
                           size=int(_size(rng, bucket) * 1.5), command="s3.sync")))
    return out


def _stolen_credentials(rng: random.Random, w: _World, pr: _Principal) -> _Out:
    """Like the OTRF EC2-proxy and flaws2 cases: the role's key replayed from a laptop."""
    p, out = w.plan, []
    t = _pick_time(rng, p, 5400, 0.0, None)
    c = _attack_caller(rng, p, pr, t, new_ip=True, ua=rng.choice((_ATTACK_UAS[0], _ATTACK_UAS[2])))
    out.append((t, _mgmt(rng, w, c, t, "sts:GetCallerIdentity")))
    t += rng.uniform(5, 60)
    out.append((t, _mgmt(rng, w, c, t, "s3:ListBuckets")))
    candidates = [b for b in _BUCKETS if b.account_id == pr.account_id and b.shape != "trail"]
    for bucket in rng.sample(candidates, min(len(candidates), rng.randint(2, 4))):
        allowed = bucket.name in pr.buckets or bucket.name in pr.write_buckets or rng.random() < 0.4
        deny = None if allowed else ("AccessDenied", "Access Denied")
        t += rng.uniform(20, 240)
        out.append((t, _s3(rng, c, t, "ListObjects", bucket, "", error=deny, command="s3.ls")))
        if not allowed:
            continue
        for i in range(rng.randint(2, 12)):
            t += rng.uniform(2, 45)
            out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=_size(rng, bucket),
                               command="s3.cp")))
    for key in rng.sample(("ec2:DescribeInstances", "iam:ListRoles", "secretsmanager:ListSecrets", "iam:ListUsers"), 2):
        t += rng.uniform(10, 120)
        out.append((t, _mgmt(rng, w, c, t, key, deny=key.startswith(("iam", "secrets")))))
    return out


def _recon_burst(rng: random.Random, w: _World, pr: _Principal) -> _Out:
    p, out = w.plan, []
    t = _pick_time(rng, p, 900, pr.tz, (10.0, 16.0) if _is_human(pr) else None)
    new_ip = rng.random() < 0.5
    c = _attack_caller(rng, p, pr, t, new_ip=new_ip, ua=_ATTACK_UAS[1])
    pool = [k for k in _RECON_APIS if k not in pr.apis]
    rng.shuffle(pool)
    denied = {k: rng.random() < 0.5 for k in pool}
    n = rng.randint(95, 110)
    body = [(k, pr.region) for k in pool[: n - 9]]
    body += [("ec2:DescribeInstances", region) for region in rng.sample(_REGIONS, 8)]  # tools sweep regions
    while len(body) < n - 1:
        body.append((rng.choice(pool), pr.region))
    rng.shuffle(body)
    calls = [("sts:GetCallerIdentity", pr.region), *body]
    span = rng.uniform(180, 300)
    for key, region in calls:
        t += rng.expovariate(len(calls) / span)
        deny = denied.get(key, False) and key != "sts:GetCallerIdentity"
        out.append((t, _mgmt(rng, w, c, t, key, region=region, deny=deny)))
    return out


def _slow_exfiltration(rng: random.Random, w: _World, pr: _Principal) -> _Out:
    p, out = w.plan, []
    hours_n = rng.randint(5, 7)
    t0 = _pick_time(rng, p, hours_n * _HOUR + 600, pr.tz, (0.5, 2.5) if _is_human(pr) else None)
    c = _attack_caller(rng, p, pr, t0, new_ip=rng.random() < 0.5)
    bucket = _unread_bucket(rng, w, pr, sensitive=True)
    i = 0
    for h in range(hours_n):
        for _ in range(rng.randint(30, 50)):
            t = t0 + h * _HOUR + rng.uniform(0, _HOUR)
            key = _object_key(rng, bucket, t, i)
            out.append((t, _s3(rng, c, t, "GetObject", bucket, key, size=_size(rng, bucket))))
            i += 1
    out.sort(key=lambda x: x[0])
    return out


def _sensitive_config_change(rng: random.Random, w: _World, pr: _Principal) -> _Out:
    p, out = w.plan, []
    t = _pick_time(rng, p, 1800, pr.tz, (10.0, 17.0) if _is_human(pr) else None)
    c = _attack_caller(rng, p, pr, t, new_ip=rng.random() < 0.3)
    acct = pr.account_id
    bucket = rng.choice([b for b in _BUCKETS if b.account_id == acct and b.shape != "trail"])
    trail = w.names[acct].trails[0]
    snapshot = rng.choice(w.names[acct].snapshots)
    bp = {"bucketName": bucket.name, "Host": bucket.host}
    public = {"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket.name}/*"}]}
    changes: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = [
        ("s3:GetBucketPolicy", "s3:PutBucketPolicy", {**bp, "policy": "", "bucketPolicy": public}, None),
        ("s3:GetBucketPublicAccessBlock", "s3:DeleteBucketPublicAccessBlock", {**bp, "publicAccessBlock": ""}, None),
        ("ec2:DescribeSnapshots", "ec2:ModifySnapshotAttribute", {
            "snapshotId": snapshot, "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": _EXTERNAL_ACCOUNT}]}}}, {"_return": True}),
        ("cloudtrail:GetTrailStatus", "cloudtrail:StopLogging", {"name": trail}, None),
        ("cloudtrail:DescribeTrails", "cloudtrail:DeleteTrail", {"name": trail}, None),
    ]
    for look, change, params, response in rng.sample(changes, rng.randint(2, 4)):
        t += rng.uniform(20, 300)
        out.append((t, _mgmt(rng, w, c, t, look)))
        t += rng.uniform(5, 90)
        if response is not None:
            response = {"requestId": _uuid(rng), **response}
        out.append((t, _mgmt(rng, w, c, t, change, params=params, response=response)))
    return out


def _mass_delete(rng: random.Random, w: _World, pr: _Principal) -> _Out:
    p, out = w.plan, []
    t = _pick_time(rng, p, 1800, pr.tz, (9.0, 18.0) if _is_human(pr) else None)
    c = _attack_caller(rng, p, pr, t, new_ip=rng.random() < 0.6, ua=_ATTACK_UAS[1])
    bucket = w.buckets[pr.write_buckets[0]] if pr.write_buckets else rng.choice(
        [b for b in _BUCKETS if b.account_id == pr.account_id and b.shape != "trail"])
    out.append((t, _s3(rng, c, t, "ListObjects", bucket, "")))
    if rng.random() < 0.7:  # ransomware habit: make the deletions stick
        bp = {"bucketName": bucket.name, "Host": bucket.host}
        t += rng.uniform(3, 30)
        out.append((t, _mgmt(rng, w, c, t, "s3:GetBucketVersioning", params={**bp, "versioning": ""})))
        t += rng.uniform(3, 30)
        suspend = {"Status": "Suspended", "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}
        params = {**bp, "versioning": "", "VersioningConfiguration": suspend}
        out.append((t, _mgmt(rng, w, c, t, "s3:PutBucketVersioning", params=params)))
    n = rng.randint(300, 800)
    rate = n / rng.uniform(240, 600)
    for i in range(n):
        t += rng.expovariate(rate)
        out.append((t, _s3(rng, c, t, "DeleteObject", bucket, _object_key(rng, bucket, t, i))))
    return out


def _privilege_escalation(rng: random.Random, w: _World, pr: _Principal) -> _Out:
    p, out = w.plan, []
    t = _pick_time(rng, p, 1800, pr.tz, (11.0, 19.0) if _is_human(pr) else None)
    c = _attack_caller(rng, p, pr, t, new_ip=rng.random() < 0.5)
    users = [u for u in w.names[pr.account_id].users if u != pr.name]
    created_user = rng.random() < 0.5 or not users
    target = rng.choice(("support-temp", "backup-svc", "ci-legacy")) if created_user else rng.choice(users)
    stamp = _expiration(t)
    steps: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("iam:ListUsers", None, None),
        ("iam:ListAttachedUserPolicies", {"userName": target}, None),
    ]
    if created_user:
        steps.insert(1, ("iam:CreateUser", {"userName": target}, {"user": {
            "path": "/", "userName": target, "userId": "AIDA" + _token(pr.account_id, target, n=17),
            "arn": f"arn:aws:iam::{pr.account_id}:user/{target}", "createDate": stamp}}))
    steps += [
        ("iam:AttachUserPolicy", {"userName": target, "policyArn": _ADMIN_POLICY}, None),
        ("iam:CreateAccessKey", {"userName": target}, {"accessKey": {
            "userName": target, "accessKeyId": "AKIA" + _token(p.seed, pr.key, target), "status": "Active",
            "createDate": stamp}}),
        ("iam:CreateLoginProfile", {"userName": target, "passwordResetRequired": False},
         {"loginProfile": {"userName": target, "createDate": stamp, "passwordResetRequired": False}}),
    ]
    for key, params, response in steps:
        t += rng.uniform(5, 120)
        out.append((t, _mgmt(rng, w, c, t, key, params=_DRAW if params is None else params, response=response)))
    return out


_SCENARIO_BUILDERS: dict[str, Callable[[random.Random, _World, _Principal], _Out]] = {
    "bulk_exfiltration": _bulk_exfiltration,
    "stolen_credentials": _stolen_credentials,
    "recon_burst": _recon_burst,
    "slow_exfiltration": _slow_exfiltration,
    "sensitive_config_change": _sensitive_config_change,
    "mass_delete": _mass_delete,
    "privilege_escalation": _privilege_escalation,
}
_VICTIM_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # (preferred kinds, fallback kinds): victims need a stable identity ARN and a baseline
    "bulk_exfiltration": (("human_sso", "human_iam_user", "ec2_instance", "lambda"), ()),
    "stolen_credentials": (("ec2_instance",), ("lambda",)),
    "recon_burst": (("human_sso", "human_iam_user", "lambda", "ec2_instance"), ()),
    "slow_exfiltration": (("human_sso", "human_iam_user"), ("ec2_instance",)),
    "sensitive_config_change": (("human_sso", "human_iam_user", "deploy"), ()),
    "mass_delete": (("human_sso", "human_iam_user", "ec2_instance", "lambda"), ()),
    "privilege_escalation": (("human_iam_user", "human_sso", "lambda"), ()),
}


def _attacks(p: SimulationPlan) -> list[_Attack]:
    """Every selected scenario's events. Victims are drawn for all scenarios, so a subset is stable."""
    w = _build_world(p)
    taken: set[str] = set()
    result = []
    for name in SCENARIOS:
        rng = random.Random(f"{p.seed}|attack|{name}")
        preferred, fallback = _VICTIM_KINDS[name]
        eligible = [pr for pr in w.principals if not pr.starter and pr.first_day < p.history_days]
        victims = ([pr for pr in eligible if pr.kind in preferred and pr.key not in taken]
                   or [pr for pr in eligible if pr.kind in fallback and pr.key not in taken]
                   or [pr for pr in eligible if pr.kind in preferred])
        victim = rng.choice(victims)
        taken.add(victim.key)
        if name not in p.scenarios:
            continue
        events = _SCENARIO_BUILDERS[name](rng, w, victim)
        result.append(_Attack(name, victim, events))
    return result


def labels(p: SimulationPlan) -> list[Label]:
    """The ground truth for :func:`iter_events` of the same plan, one :class:`Label` per scenario."""
    out = []
    for a in _attacks(p):
        times = [t for t, _ in a.events]
        out.append(Label(
            scenario=a.scenario,
            principal_arn=a.events[0][1]["userIdentity"]["arn"],
            account_id=a.victim.account_id,
            start=float(int(min(times))),
            end=float(int(max(times))),
            event_ids=tuple(ev["eventID"] for _, ev in a.events),
        ))
    return out


# ---------------------------------------------------------------------------------------------
# The stream
# ---------------------------------------------------------------------------------------------


def _iter_tagged(p: SimulationPlan) -> Iterator[tuple[str, float, dict[str, Any]]]:
    """Events with the kind of principal (or ``attack:<scenario>``) that produced them and their time."""
    w = _build_world(p)
    pending: dict[int, list[tuple[float, str, dict[str, Any]]]] = defaultdict(list)
    total_hours = p.days * 24
    for a in _attacks(p):
        for t, ev in a.events:
            pending[int((t - p.start) // _HOUR)].append((t, f"attack:{a.scenario}", ev))
    for d in range(p.days):
        # a day's generators only emit at or after that day's midnight, so hours of day d are
        # complete once every principal's day d is generated (people west of UTC spill into d+1)
        for pr in w.principals:
            rng = random.Random(f"{p.seed}|{pr.key}|{d}")
            out: _Out = []
            _DAY_GENERATORS[pr.kind](rng, w, pr, d, out)
            for t, ev in out:
                h = int((t - p.start) // _HOUR)
                if d * 24 <= h < total_hours:
                    pending[h].append((t, pr.kind, ev))
        for h in range(d * 24, (d + 1) * 24):
            batch = pending.pop(h, [])
            jitter = random.Random(f"{p.seed}|deliver|{h}")
            # delivery reorders events a little: sort on event time plus up to 20 s of noise
            keyed = sorted(((t + jitter.random() * 20, i) for i, (t, _, _) in enumerate(batch)))
            for _, i in keyed:
                t, kind, ev = batch[i]
                yield kind, t, ev


def iter_events(p: SimulationPlan) -> Iterator[dict[str, Any]]:
    """CloudTrail event dicts for the plan, in roughly event-time order.

    Events are generated a day at a time and released an hour at a time; inside an hour the order
    is shuffled by up to 20 seconds like real delivery. Memory holds about one day of events. The
    attack events of :func:`labels` are included exactly once each.
    """
    for _, _, ev in _iter_tagged(p):
        yield ev


# ---------------------------------------------------------------------------------------------
# Archive writer (the only I/O)
# ---------------------------------------------------------------------------------------------


def write_archive(p: SimulationPlan, out: Path) -> dict[str, Any]:
    """Write the plan as a CloudTrail S3 archive under ``out``.

    Layout: ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_
    <YYYYMMDDTHHMMZ>_<16 alnum>.json.gz`` holding ``{"Records": [...]}``, one file per account and
    region per 5-minute delivery window. Each event is delivered 1-10 minutes after it happened,
    so files overlap in event time and records inside a file are unsorted, as in real trails.
    Also writes ``labels.jsonl`` and ``simulation.json`` (plan, roster, counts).

    Returns
    -------
    dict
        ``events``, ``files``, ``principals``, ``labels``, ``attack_events`` and ``by_kind``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{p.seed}|archive")
    windows: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    by_kind: dict[str, int] = defaultdict(int)
    counts = {"events": 0, "files": 0}

    def flush(keys: list[tuple[int, str, str]]) -> None:
        for key in sorted(keys):
            window, acct, region = key
            records = windows.pop(key)
            rng.shuffle(records)
            stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(window))
            day = time.strftime("%Y/%m/%d", time.gmtime(window))
            suffix = "".join(rng.choice(_ALNUM) for _ in range(16))
            folder = out / "AWSLogs" / acct / "CloudTrail" / region / day
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{acct}_CloudTrail_{region}_{stamp}_{suffix}.json.gz"
            # level 3: half the time of the default for ~20% larger files; mtime=0 keeps the bytes reproducible
            data = gzip.compress(orjson.dumps({"Records": records}), compresslevel=3, mtime=0)
            (folder / name).write_bytes(data)
            counts["files"] += 1

    last_flush = p.start
    for kind, t, ev in _iter_tagged(p):
        delivered = t + rng.uniform(60, 600)
        key = (int(delivered // 300 * 300), ev["recipientAccountId"], ev["awsRegion"])
        windows.setdefault(key, []).append(ev)
        by_kind[kind.split(":")[0]] += 1
        counts["events"] += 1
        if t - last_flush > 900:
            flush([k for k in windows if k[0] + 300 < t - 600])
            last_flush = t
    flush(list(windows))

    labs = labels(p)
    with (out / "labels.jsonl").open("wb") as fh:
        for lab in labs:
            fh.write(orjson.dumps(dataclasses.asdict(lab)) + b"\n")
    summary: dict[str, Any] = {
        "events": counts["events"],
        "files": counts["files"],
        "principals": p.n_principals,
        "labels": len(labs),
        "attack_events": sum(len(lab.event_ids) for lab in labs),
        "by_kind": dict(sorted(by_kind.items())),
        "test_start": _iso(p.test_start),  # attacks from here on: train with --until this
    }
    meta = {
        **dataclasses.asdict(p),
        "start_iso": _iso(p.start),
        "test_start_iso": _iso(p.test_start),
        "accounts": list(ACCOUNTS),
        "principals": roster(p),
        "counts": summary,
    }
    (out / "simulation.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return summary


# ---------------------------------------------------------------------------------------------
# Bulk stream for throughput benchmarks
# ---------------------------------------------------------------------------------------------


def _hex_rows(gen: np.random.Generator, m: int, n_bytes: int, upper: bool = False) -> np.ndarray:
    """``m`` rows of ``2 * n_bytes`` random hex digits as ASCII codes."""
    raw = np.frombuffer(gen.bytes(n_bytes * m), dtype=np.uint8).reshape(m, n_bytes)
    nib = np.empty((m, 2 * n_bytes), dtype=np.uint8)
    nib[:, 0::2] = raw >> 4
    nib[:, 1::2] = raw & 15
    return nib + 48 + (nib > 9) * np.uint8(7 if upper else 39)


def _lines(rows: np.ndarray) -> list[str]:
    # one decode and split is far cheaper than formatting each id in Python
    out = np.full((rows.shape[0], rows.shape[1] + 1), 10, dtype=np.uint8)
    out[:, :-1] = rows
    return out.tobytes().decode("ascii").split("\n")[:-1]


def _uuid_batch(gen: np.random.Generator, m: int) -> list[str]:
    """``m`` random version-4 UUID strings."""
    chars = _hex_rows(gen, m, 16)
    chars[:, 12] = ord("4")
    chars[:, 16] = np.frombuffer(b"89ab", dtype=np.uint8)[chars[:, 16] & 3]
    out = np.full((m, 36), ord("-"), dtype=np.uint8)
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        out[:, dst:dst + width] = chars[:, src:src + width]
    return _lines(out)


def _hex_batch(gen: np.random.Generator, m: int) -> list[str]:
    """``m`` S3-style request ids: 16 upper-case hex digits."""
    return _lines(_hex_rows(gen, m, 8, upper=True))


def _bulk_identity(p: SimulationPlan, pr: _Principal) -> dict[str, Any]:
    """``pr``'s userIdentity during the bulk stream's day (one session, its credentials)."""
    t = p.start + _DAY + 8 * _HOUR
    if _is_human(pr):
        key = pr.access_key or "ASIA" + _token(p.seed, pr.key, "bulk")
        return _caller(pr, ip="", ua="", key=key, created=None if pr.access_key else t).identity()
    key, created = _role_key(p, pr, t, 21600)
    return _caller(pr, ip="", ua="", key=key, created=created).identity()


def iter_bulk(n_events: int, seed: int = 1, principals: int = 1000) -> Iterator[dict[str, Any]]:
    """``n_events`` realistic events as fast as possible, for benchmarks.

    A few principals of each kind and account run one business day through the same generators
    as :func:`iter_events` (nightly jobs scaled down so the mix is not all batch reads); those
    events become templates. Each output event is a template replayed for a random principal of
    the same kind and account (its identity and, for people, its address), with a fresh
    ``eventID``, ``requestID`` and ``eventTime`` (12 events per simulated second) and, for S3
    reads, a fresh key and size. Top-level dicts are new; nested dicts are shared between events,
    so treat events as read-only.
    """
    if n_events < 0:
        raise ConfigError(f"n_events must be >= 0, got {n_events}")
    p = plan(days=2, seed=seed, scenarios=(), test_days=0, principals=principals)
    w = _build_world(p)
    groups: dict[tuple[str, str], list[_Principal]] = defaultdict(list)
    for pr in w.principals:
        groups[(pr.kind, pr.account_id)].append(pr)
    templates: list[dict[str, Any]] = []
    members: list[list[tuple[dict[str, Any], str]]] = []  # per template: identities it may take
    for (kind, _acct), prs in groups.items():
        identities = [(_bulk_identity(p, pr), pr.ips[0] if pr.ips else "") for pr in prs]
        for pr in prs[:3]:
            sample = dataclasses.replace(pr, batch_size=max(1, pr.batch_size // 8))
            out: _Out = []
            _DAY_GENERATORS[kind](random.Random(f"{seed}|bulk|{pr.key}"), w, sample, 1, out)
            for _, ev in out:
                templates.append(ev)
                # only events made as this principal (not credential vending) may change hands, and
                # only for kinds whose identity is stable
                own = ev["userIdentity"].get("arn") == pr.arn
                members.append(identities if own and (_is_human(pr) or kind in ("lambda", "ec2_instance")) else [])
    if not templates:
        return
    short_rid = [len(t.get("requestID", "")) == 16 for t in templates]
    gen = np.random.default_rng(seed)
    # random draws come in fixed-size chunks so iter_bulk(n) is a prefix of iter_bulk(n + k)
    chunk = 16384
    base = int(p.start + _DAY)
    last_sec, last_iso = -1, ""
    i = 0
    while i < n_events:
        picks = gen.integers(0, len(templates), size=chunk).tolist()
        who = gen.integers(0, 1 << 30, size=chunk).tolist()
        event_ids = _uuid_batch(gen, chunk)
        request_ids = _uuid_batch(gen, chunk)
        s3_ids = _hex_batch(gen, chunk)
        sizes = gen.lognormal(14.0, 1.2, size=chunk).astype(np.int64).tolist()
        m = min(chunk, n_events - i)
        for j in range(m):
            k = picks[j]
            tpl = templates[k]
            ev = tpl.copy()
            sec = base + (i + j) // 12
            if sec != last_sec:
                last_sec, last_iso = sec, _iso(sec)
            ev["eventID"] = event_ids[j]
            ev["eventTime"] = last_iso
            if "requestID" in ev:
                ev["requestID"] = s3_ids[j] if short_rid[k] else request_ids[j]
            group = members[k]
            if group:
                ident, ip = group[who[j] % len(group)]
                ev["userIdentity"] = ident
                if ip:
                    ev["sourceIPAddress"] = ip
            if ev["eventName"] == "GetObject" and "additionalEventData" in ev:
                rp = tpl["requestParameters"]
                ev["requestParameters"] = {"bucketName": rp["bucketName"], "Host": rp["Host"],
                                           "key": f"{rp['key'].rsplit('/', 1)[0]}/part-{(i + j) % 100000:05d}.bin"}
                ad = tpl["additionalEventData"].copy()
                ad["bytesTransferredOut"] = sizes[j]
                ev["additionalEventData"] = ad
            yield ev
        i += m
