"""The API table: every call the simulated world makes, its service, whether it is read-only, and its parameters."""



from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from detector.simulate.records import _Caller
    from detector.simulate.world import _World

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
    ("ec2:RunInstances", False),
    ("ec2:CreateKeyPair", False),
    ("ec2:CreateSecurityGroup", False),
    ("ec2:AuthorizeSecurityGroupIngress", False),
    ("servicequotas:GetServiceQuota", True),
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
