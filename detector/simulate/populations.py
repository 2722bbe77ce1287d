"""Benign behaviour, one principal-day at a time: people, workloads, batch jobs, deploys, AWS services."""

# ruff: noqa: S311 - seeded pseudo-randomness is the point here: reproducible traffic, not secrets

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from detector.simulate.apis import _RECON_APIS
from detector.simulate.ids import _digest, _expiration, _hex, _iso, _poisson, _token, _uuid
from detector.simulate.plan import _DAY, _HOUR, _TRAIL_BUCKET, ACCOUNTS
from detector.simulate.records import _DATASETS, _Caller, _caller, _mgmt, _object_key, _s3, _size
from detector.simulate.world import (
    _AWS_NETS,
    _BUCKETS,
    _CW_AGENT_UA,
    _GH_NETS,
    _GH_OIDC_UA,
    _GH_RUNNER_UA,
    _SSM_AGENT_UA,
    _ip,
)

if TYPE_CHECKING:
    from detector.simulate.plan import SimulationPlan
    from detector.simulate.records import _Out
    from detector.simulate.world import _Bucket, _Principal, _World



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
    ips = pr.ips
    if 0 <= pr.move_day <= d:  # moved house: the new home network from that day on
        ips = (ips[0], pr.moved_ip, *ips[2:])
    ip = ips[0] if len(ips) == 1 else rng.choices(ips, cum_weights=pr.ip_cum)[0]
    if weekday >= 5 or spans[0][0] > 20:
        ip = ips[1]
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
        day = int((t - w.plan.start) // _DAY)
        joined = bool(pr.new_bucket) and 0 <= pr.new_bucket_day <= day and rng.random() < 0.4
        bucket = w.buckets[pr.new_bucket if joined else rng.choice(pr.buckets)]
        if rng.random() < 0.03:  # a look into a colleague's bucket: one or two objects, now and then
            others = [b for b in _BUCKETS if b.account_id == pr.account_id and not b.sensitive
                      and b.name not in pr.buckets and b.shape != "trail"]
            bucket = w.buckets[rng.choice(others).name] if others else bucket
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
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t),
                           size=int(_size(rng, bucket) * pr.size_scale),
                           error=("NoSuchKey", "The specified key does not exist.") if err else None)))
    elif r < 0.58 and pr.write_buckets:
        bucket = w.buckets[pr.write_buckets[0]]
        key = _object_key(rng, bucket, t + _DAY)
        out.append((t, _s3(rng, c, t, "PutObject", bucket, key, size=int(_size(rng, bucket) * pr.size_scale))))
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
        for _ in range(_poisson(rng, pr.rate * pr.wave[h] * weekend)):
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
        for _ in range(_poisson(rng, pr.rate * (0.6 + 0.4 * pr.wave[h]))):
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
        for _ in range(_poisson(rng, pr.rate * (0.7 + 0.3 * pr.wave[h]))):
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
    rate = n / (pr.span_s * rng.uniform(0.85, 1.15))
    for _ in range(n // 1000 + 1):
        t += rng.uniform(0.2, 1.0)
        out.append((t, _s3(rng, c, t, "ListObjects", source, prefix if source.shape == "parquet" else "app/")))
    for i in range(n):
        t += rng.expovariate(rate)
        bucket = source
        if pr.new_bucket and 0 <= pr.new_bucket_day <= d and i % 10 == 0:
            bucket = w.buckets[pr.new_bucket]
        size = int(_size(rng, bucket) * pr.size_scale)
        out.append((t, _s3(rng, c, t, "GetObject", bucket, _object_key(rng, bucket, t, i), size=size)))
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
