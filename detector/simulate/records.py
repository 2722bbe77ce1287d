"""Event construction: the one place that knows CloudTrail record shapes (callers, management and S3 events)."""



from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from detector.simulate.apis import _API, _GLOBAL
from detector.simulate.ids import _amz_id_2, _hex, _iso, _s3_request_id, _uuid
from detector.simulate.plan import _DAY
from detector.simulate.world import _FIRST

if TYPE_CHECKING:
    from detector.simulate.apis import _Api
    from detector.simulate.world import _Bucket, _Principal, _World

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
