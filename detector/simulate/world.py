"""The world: two accounts, their buckets and resource names, and a roster of principals with randomised habits."""

# ruff: noqa: S311 - seeded pseudo-randomness is the point here: reproducible traffic, not secrets

from __future__ import annotations

import dataclasses
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from detector.simulate.apis import _API, _PERSONA_APIS, _SSO_ROLE_OF
from detector.simulate.ids import _hex, _token
from detector.simulate.plan import ACCOUNTS

if TYPE_CHECKING:
    from detector.simulate.plan import SimulationPlan

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
    # randomised per seed (see _randomise): object sizes, the daily wave of a 24/7 workload,
    # a move to a new home network (people), a batch window's length
    size_scale: float = 1.0
    wave: tuple[float, ...] = ()
    move_day: int = -1
    moved_ip: str = ""
    span_s: float = 1800.0

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

    _randomise(world, random.Random(f"{p.seed}|traits|{p.n_principals}"))
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


# per-seed variety ------------------------------------------------------------------------------

# relative activity of customer-facing services by UTC hour (US business day peaks)
_DIURNAL = (0.45, 0.38, 0.32, 0.28, 0.25, 0.25, 0.28, 0.33, 0.40, 0.48, 0.55, 0.62,
            0.72, 0.82, 0.92, 1.00, 1.00, 0.98, 0.94, 0.88, 0.80, 0.70, 0.60, 0.52)


def _wave(rng: random.Random) -> tuple[float, ...]:
    """A 24/7 workload's relative activity by UTC hour: a smooth daily wave shifted to its users'
    time zone, a stepped one (busy block, quiet rest), or nearly flat."""
    shape = rng.random()
    if shape < 0.5:
        shift, depth = rng.randrange(24), rng.uniform(0.3, 1.0)
        return tuple(1.0 - depth * (1.0 - _DIURNAL[(h + shift) % 24]) for h in range(24))
    if shape < 0.85:
        start, length, low = rng.randrange(24), rng.randint(6, 14), rng.uniform(0.1, 0.5)
        return tuple(1.0 if (h - start) % 24 < length else low for h in range(24))
    return tuple(rng.uniform(0.85, 1.0) for _ in range(24))


def _decade(rng: random.Random, span: float = 1.0) -> float:
    """A factor log-uniform over ``span`` orders of magnitude around 1."""
    return float(10.0 ** rng.uniform(-span / 2, span / 2))


def _randomise(world: _World, rng: random.Random) -> None:
    """What makes one seed's world unlike another's: every principal's rates over an order of
    magnitude, object sizes, schedules and network churn; bucket object sizes; and benign change
    (new services deployed mid-test, people moving, a new team bucket)."""
    p = world.plan
    world.buckets = {
        name: dataclasses.replace(b, median_bytes=b.median_bytes * _decade(rng, 0.8))
        for name, b in world.buckets.items()
    }
    for pr in world.principals:
        if pr.kind == "aws_service":
            continue
        if pr.kind != "deploy":  # a deploy role's rate is a probability
            pr.rate *= _decade(rng)
        pr.size_scale = _decade(rng)
        pr.wave = _wave(rng)
        if pr.kind == "batch":
            pr.batch_size = max(200, int(pr.batch_size * _decade(rng, 0.8)))
            pr.hour = rng.choice((rng.uniform(0.0, 5.0), rng.uniform(19.0, 23.0)))
            pr.span_s = rng.uniform(1200, 7200)
        if pr.kind in ("human_sso", "human_iam_user"):
            pr.travel_p = float(10.0 ** rng.uniform(-2.3, -1.2))
            if rng.random() < 0.2 and len(pr.ips) > 1:  # moves house (or changes ISP) some day
                pr.move_day = rng.randrange(1, p.days)
                prefix = pr.ips[1].rsplit(".", 2)[0]
                pr.moved_ip = _ip(rng, f"{prefix.split('.')[0]}.{rng.randint(1, 250)}.{rng.randint(0, 255)}")
    # new services deployed mid-history and during the test days: a role that did not exist
    workloads = [pr for pr in world.principals if pr.kind in ("lambda", "ecs_task") and not pr.new_bucket]
    rng.shuffle(workloads)
    if p.history_days >= 3 and workloads:
        workloads[0].first_day, workloads[0].starter = max(1, p.history_days // 2), True
    if p.days - p.history_days >= 1 and len(workloads) >= 2:
        workloads[1].first_day, workloads[1].starter = p.history_days + rng.randrange(p.days - p.history_days), True
    # a team starts using a new bucket some day (the usual network and tools, office hours)
    people = [pr for pr in world.principals if pr.kind in ("human_sso", "human_iam_user") and pr.buckets
              and not pr.starter]
    if people and p.days >= 3:
        acct = rng.choice(people).account_id
        team = [pr for pr in people if pr.account_id == acct]
        name = f"acme-{rng.choice(_WORDS)}-team-{_hex(p.seed, 'team', n=6)}"
        world.buckets[name] = _Bucket(name, acct, "us-east-1", "csv", 3e5 * _decade(rng), False)
        day = rng.randrange(max(1, p.history_days - 2), p.days)
        for pr in rng.sample(team, min(len(team), rng.randint(2, 4))):
            pr.new_bucket, pr.new_bucket_day = name, day
