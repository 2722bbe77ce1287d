"""Typed configuration: ``config/detector.yaml`` plus ``DETECTOR_`` environment overrides.

Every model is frozen and forbids unknown keys, so a typo is an error that names the file
and the key path (``detection.getobject_burst.min_objcts: unknown key``), not a setting
silently ignored. Environment overrides use ``__`` between levels:
``DETECTOR_PIPELINE__BATCH_SIZE=1024``; values are parsed as YAML scalars.
Secrets (webhook tokens) are ``SecretStr`` and print as ``**********``, as do the paths and
queries of webhook URLs in ``config show``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from detector import default_model
from detector.errors import ConfigError
from detector.memo import remember
from detector.principal import CALLER_CLASSES
from detector.textsafe import MASK, mask_url
from detector.urls import webhook_url_problem

ENV_PREFIX = "DETECTOR_"
CallerClass = Literal["human", "automation", "aws-service", "anonymous"]
# Environment variables with the prefix that are not config keys.
ENV_NOT_CONFIG = frozenset({"DETECTOR_MODEL_KEY", "DETECTOR_CONFIG"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Burst(_Model):
    """A burst rule: fire when a ~10 min window count passes both an absolute floor and
    ``multiplier`` x this principal's own decayed peak for that window."""

    min_objects: float = Field(500, ge=1, description="absolute floor on objects in ~10 min")
    min_bytes: float = Field(20e9, ge=0, description="bytes in ~10 min that fire on their own")
    multiplier: float = Field(4.0, ge=1, description="how far above the principal's own peak")
    corroborated_factor: float = Field(
        0.25,
        gt=0,
        le=1,
        description="floors scale by this when the burst also comes from a new network, "
        "client or bucket, or outside the principal's hours",
    )


class Thresholds(_Model):
    """Everything a caller class, role or principal can override."""

    anomaly_quantile: float = Field(
        0.9995,
        gt=0.5,
        lt=1,
        description="forest threshold: a score above this share of the peer group's training rows that may alert",
    )
    persist_events: int = Field(
        2, ge=1, le=1000, description="over-threshold events in a row (each within persist_window_s) for an alert"
    )
    persist_window_s: float = Field(600, gt=0, description="longest gap between those events")
    min_unusual_features: int = Field(
        2, ge=0, description="features at least min_surprise unusual (for the peer group) an anomaly alert needs"
    )
    min_surprise: float = Field(
        2.0, ge=0, description="-log10 of the share of the peer group's rows as extreme: 2.0 is 1 in 100"
    )
    min_history_events: int = Field(100, ge=0, description="events before anomaly alerts are allowed")
    min_age_hours: float = Field(48, ge=0, description="principal age before anomaly alerts are allowed")
    min_active_days: int = Field(
        3, ge=0, le=16, description="earlier days with activity (of the last 16) before anomaly alerts are allowed"
    )
    cold_start_factor: float = Field(
        3.0,
        ge=1,
        description="while a principal's own history is young, burst floors and recon need this many times more",
    )
    getobject_burst: Burst = Burst()
    bucket_burst: Burst = Burst(min_objects=400, min_bytes=20e9, multiplier=4.0)
    delete_burst: Burst = Burst(min_objects=100, min_bytes=0, multiplier=4.0)
    new_bucket_drain_objects: float = Field(
        25, ge=1, description="GetObjects in ~1 h from a bucket first read < 24 h ago"
    )
    recon_novel_apis: float = Field(12, ge=1, description="first-time APIs in ~10 min")
    sensitive_first_use: bool = Field(True, description="alert on a sensitive API this principal never used")


class Override(_Model):
    """Thresholds for principals whose key, role ARN or caller class matches (globs)."""

    principal: str | None = None
    role: str | None = None
    caller_class: CallerClass | None = None
    set: dict[str, Any]

    def matches(self, key: str, role_arn: str, caller_class: str) -> bool:
        if self.principal is not None and not fnmatch.fnmatchcase(key, self.principal):
            return False
        if self.role is not None and not fnmatch.fnmatchcase(role_arn, self.role):
            return False
        return self.caller_class is None or self.caller_class == caller_class


class Suppression(_Model):
    """Silence matching alerts until ``until``; ``reason`` is mandatory so it can be reviewed."""

    kind: str = "*"
    principal: str = "*"
    until: dt.date
    reason: str = Field(min_length=3)

    def matches(self, kind: str, key: str, today: dt.date) -> bool:
        return today <= self.until and fnmatch.fnmatchcase(kind, self.kind) and fnmatch.fnmatchcase(key, self.principal)


DEFAULT_SENSITIVE = (
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
    "ModifyDBSnapshotAttribute",
    "ModifyDBClusterSnapshotAttribute",
    "PutBucketPolicy",
    "PutBucketAcl",
    "PutObjectAcl",
    "DeletePublicAccessBlock",
    "PutPublicAccessBlock",
    "DeleteBucketPolicy",
    "PutBucketReplication",
    "PutBucketVersioning",  # suspending versioning is how ransomware makes its deletes stick
    "StopLogging",
    "DeleteTrail",
    "UpdateTrail",
    "PutEventSelectors",
    "DeleteFlowLogs",
    "DeleteDetector",
    "DisableSecurityHub",
    "LeaveOrganization",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "PutUserPolicy",
    "PutRolePolicy",
    "UpdateAssumeRolePolicy",
    "CreateUser",
    "GetPasswordData",
    "GetSecretValue",
    "BatchGetSecretValue",
    "AuthorizeSecurityGroupIngress",
    "PutKeyPolicy",
    "ScheduleKeyDeletion",
    "DisableKey",
    "GetFederationToken",
    "CreateTrustAnchor",
    "SendSSHPublicKey",
    "SendSerialConsoleSSHPublicKey",
    # privilege escalation through a policy's versions or a group
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "AttachGroupPolicy",
    "PutGroupPolicy",
    "AddUserToGroup",
    # defence evasion: MFA, AWS Config, DNS query logs, default EBS encryption
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
    "StopConfigurationRecorder",
    "DeleteConfigurationRecorder",
    "DeleteDeliveryChannel",
    "DeleteResolverQueryLogConfig",
    "DisableEbsEncryptionByDefault",
    # persistence and execution: an instance's user data, a function's resource policy
    "ModifyInstanceAttribute",
    "AddPermission20150331v2",
    "PutBucketLifecycle",  # an expiry rule deletes a bucket's objects (or a trail's logs) quietly
)


# Reading a secret is how people and jobs start using one: on its own, a first read is routine.
DEFAULT_SENSITIVE_READS = ("GetSecretValue", "BatchGetSecretValue", "GetPasswordData")


class Detection(_Model):
    defaults: Thresholds = Thresholds()
    classes: dict[CallerClass, dict[str, Any]] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            # Automation is steady and bursty by design: demand more before alerting.
            "automation": {"anomaly_quantile": 0.9999},
            # AWS services act on behalf of everyone; only explicit rules apply by default.
            "aws-service": {"anomaly_quantile": 0.99999},
        }
    )
    overrides: tuple[Override, ...] = ()
    sensitive_apis: tuple[str, ...] = DEFAULT_SENSITIVE
    sensitive_reads: tuple[str, ...] = Field(
        DEFAULT_SENSITIVE_READS,
        description="sensitive APIs that read credentials people use routinely: their first use alerts only "
        "with something else off (new network or client, outside the principal's hours, a failed call)",
    )
    known_cidrs: tuple[str, ...] = Field((), description="source networks treated as known (corporate VPN)")

    @model_validator(mode="after")
    def _reads_are_sensitive(self) -> Detection:
        """An explicit ``sensitive_reads`` must name sensitive APIs; the default applies to those listed."""
        stray = sorted(set(self.sensitive_reads) - set(self.sensitive_apis))
        if stray and "sensitive_reads" in self.model_fields_set:
            raise ValueError(f"sensitive_reads must also be in sensitive_apis; not there: {', '.join(stray)}")
        return self


class Alerts(_Model):
    dedup_window_s: float = Field(3600, gt=0, description="one open alert per principal and kind this long")
    forest_hold_s: float = Field(
        21600,
        gt=0,
        description="the forest's verdicts on one principal stay one alert (with updates) while they recur this often",
    )
    max_event_ids: int = Field(50, ge=1, le=10_000)
    max_explanations: int = Field(5, ge=1, le=20)


class Pipeline(_Model):
    batch_size: int = Field(4096, ge=1, le=1_000_000)
    state_cache_principals: int = Field(
        20_000, ge=0, description="decoded baselines kept between batches (~1.5 kB each); the store holds bytes"
    )
    max_batch_delay_s: float = Field(0.03, gt=0, description="flush a partial batch after this long")
    allowed_lateness_s: float = Field(600, ge=0, description="reorder window in event time")
    dedup_window_s: float = Field(3600, ge=0, description="eventIDs remembered for deduplication")
    evict_idle_days: float = Field(
        45,
        gt=0,
        description="principals with no event for this long (event time) are forgotten: the store stays bounded",
    )


class Sink(_Model):
    kind: Literal["stdout", "file", "webhook", "sns"]
    path: Path | None = None
    url: str | None = None
    token: SecretStr | None = None
    topic_arn: str | None = None
    timeout_s: float = Field(5.0, gt=0)
    max_retries: int = Field(5, ge=0)
    name: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="metrics label and spool folder (default: kind)"
    )
    region: str | None = Field(None, description="sns: AWS region (default: the SDK's)")
    endpoint_url: str | None = Field(None, description="sns: endpoint override (emulators)")
    format: Literal["json", "slack", "markdown"] = Field(
        "json",
        description="webhook: json (the alert) or a {\"text\": ...} message with attacker text escaped for "
        "Slack mrkdwn or Markdown",
    )
    allow_link_local: bool = Field(
        False, description="webhook: allow link-local and cloud metadata destinations (169.254.0.0/16, fe80::/10)"
    )

    @model_validator(mode="after")
    def _required_by_kind(self) -> Sink:
        needs = {"file": "path", "webhook": "url", "sns": "topic_arn"}.get(self.kind)
        if needs is not None and not getattr(self, needs):
            raise ValueError(f"a {self.kind} sink needs {needs}")
        if self.kind == "webhook" and self.url:
            problem = webhook_url_problem(self.url, self.token is not None, self.allow_link_local)
            if problem is not None:
                raise ValueError(problem)
        return self


def comma_list(value: Any) -> Any:
    """"b1:9092,b2:9092" (an environment variable) is as good as a YAML list for a list field."""
    return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else value


class Source(_Model):
    kind: Literal["simulate", "kinesis", "s3", "file", "stdin"] = "simulate"
    paths: tuple[str, ...] = ()
    stream: str | None = None
    bucket: str | None = None
    prefix: str = "AWSLogs/"
    queue_url: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    start: Literal["LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"] = "LATEST"
    start_timestamp: dt.datetime | None = None
    poll_interval_s: float = Field(1.0, gt=0)
    max_hold_s: float = Field(
        0.02, ge=0, description="live sources: longest wall-clock time an event waits in the reorder buffer"
    )
    # kinesis
    shard_refresh_s: float = Field(30.0, gt=0, description="kinesis: re-list shards this often (resharding)")
    max_records_per_call: int = Field(10_000, ge=1, le=10_000, description="kinesis: GetRecords Limit")
    # s3: backfill by account, region and time range, then follow
    accounts: tuple[str, ...] = Field((), description="s3: account IDs under the prefix (default: all listed)")
    regions: tuple[str, ...] = Field((), description="s3: regions (default: all listed)")
    end_timestamp: dt.datetime | None = Field(None, description="s3: backfill stops before this time")
    follow: bool = Field(True, description="s3: keep listing (or reading queue_url) for new files")
    bootstrap_days: float = Field(
        7.0,
        ge=0,
        le=90,
        description="s3 with start LATEST and no saved state: first learn baselines (no alerts) from this many "
        "days of the archive; 0 starts with empty baselines",
    )
    rediscover_s: float = Field(
        0, ge=0, description="s3 follow: look for new account/region prefixes this often (0: at every listing)"
    )
    get_attempts: int = Field(4, ge=1, le=20, description="s3: GetObject tries per object before it is dead-lettered")
    # simulate: demo traffic in compressed real time
    speed: float = Field(600.0, gt=0, description="simulated seconds per wall-clock second")
    seed: int = 7
    days: int = Field(10, ge=1)

    _split_lists = field_validator("paths", "accounts", "regions", mode="before")(lambda value: comma_list(value))

    @model_validator(mode="after")
    def _required_by_kind(self) -> Source:
        """What each kind cannot start without, so ``config check`` says so rather than ``run``.

        The AWS region is not here: it may come from the environment (``AWS_REGION``, a
        profile), so ``sources.preflight`` checks it where that environment is known.
        """
        if self.kind == "kinesis" and not self.stream:
            raise ValueError("source.kind is kinesis but source.stream is not set; name the stream")
        if self.kind == "s3" and not (self.bucket or self.queue_url):
            raise ValueError("source.kind is s3 but neither source.bucket nor source.queue_url is set")
        if self.kind == "file" and not self.paths:
            raise ValueError("source.kind is file but source.paths is empty; list files or directories")
        if self.kind in ("kinesis", "s3") and self.start == "AT_TIMESTAMP" and self.start_timestamp is None:
            raise ValueError("source.start is AT_TIMESTAMP but source.start_timestamp is not set")
        return self


class Metrics(_Model):
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535)


class Kafka(_Model):
    """The Kafka cluster behind ``detector bridge`` and ``detector worker``.

    Every field can be set from the environment as ``DETECTOR_KAFKA__<FIELD>``
    (``DETECTOR_KAFKA__BOOTSTRAP_SERVERS=b1:9092,b2:9092``,
    ``DETECTOR_KAFKA__SASL_PASSWORD=...``). The bridge keys each event by its principal, so
    ``partitions`` is also the most workers that can share the load; it cannot shrink later.
    Combinations (SASL needs a mechanism and credentials) are checked where the clients are built
    (``runtime/kafka_config.py``), because a validation error here would echo the password.
    """

    bootstrap_servers: tuple[str, ...] = Field(
        ("127.0.0.1:9092",), min_length=1, description="host:port list (DETECTOR_KAFKA__BOOTSTRAP_SERVERS)"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="DETECTOR_KAFKA__SECURITY_PROTOCOL"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="required with SASL_* protocols (DETECTOR_KAFKA__SASL_MECHANISM)"
    )
    sasl_username: str | None = Field(None, description="DETECTOR_KAFKA__SASL_USERNAME")
    sasl_password: SecretStr | None = Field(None, description="DETECTOR_KAFKA__SASL_PASSWORD")
    ssl_cafile: Path | None = Field(
        None, description="CA bundle for SSL/SASL_SSL; system CAs when unset (DETECTOR_KAFKA__SSL_CAFILE)"
    )
    events_topic: str = Field("cloudtrail-events", min_length=1, description="DETECTOR_KAFKA__EVENTS_TOPIC")
    alerts_topic: str = Field("detector-alerts", min_length=1, description="DETECTOR_KAFKA__ALERTS_TOPIC")
    dead_letter_topic: str = Field(
        "detector-dead-letters", min_length=1, description="DETECTOR_KAFKA__DEAD_LETTER_TOPIC"
    )
    partitions: int = Field(8, ge=1, le=10_000, description="of the events topic and state changelog")
    replication_factor: int = Field(1, ge=1, le=16, description="for topics the detector creates (3 in production)")
    consumer_group: str = Field(
        "cloudtrail-detector",
        min_length=1,
        description="worker group and Faust app id (DETECTOR_KAFKA__CONSUMER_GROUP)",
    )
    standby_replicas: int = Field(1, ge=0, le=8, description="warm copies of each partition's state on other workers")
    session_timeout_s: float = Field(30, gt=0, description="a silent worker is dropped from the group after this")
    rebalance_timeout_s: float = Field(60, gt=0, description="how long members get to rejoin during a rebalance")
    linger_ms: int = Field(20, ge=0, le=5000, description="bridge producer batching delay")
    compression: Literal["zstd", "lz4", "gzip", "snappy", "none"] = Field(
        "zstd",
        description="of everything the bridge and workers produce: CloudTrail JSON shrinks ~10x with zstd "
        "(brokers need Kafka >= 2.1 for zstd; use lz4 or gzip on older ones)",
    )
    take_records: int = Field(
        256, ge=1, le=100_000, description="worker micro-batch in records (each holds 1-500 events of one principal)"
    )
    changelog_one_record_per_batch: bool = Field(
        False,
        description="test profile only: one record per produce batch, for brokers (tansu) whose "
        "ListOffsets answers the start of the last batch + 1",
    )

    _split_servers = field_validator("bootstrap_servers", mode="before")(lambda value: comma_list(value))


class Settings(_Model):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    model: Path = Path("models/default")
    require_signature: bool = Field(
        False,
        description="refuse model artifacts without a valid HMAC signature; needs DETECTOR_MODEL_KEY "
        "(DETECTOR_REQUIRE_SIGNATURE)",
    )
    state_dir: Path = Path("var/state")
    checkpoint_interval_s: float = Field(30, gt=0)
    shutdown_timeout_s: float = Field(10, gt=0)
    source: Source = Source()
    sinks: tuple[Sink, ...] = (Sink(kind="stdout"),)
    metrics: Metrics = Metrics()
    kafka: Kafka = Kafka()
    pipeline: Pipeline = Pipeline()
    detection: Detection = Detection()
    alerts: Alerts = Alerts()
    suppressions: tuple[Suppression, ...] = ()

    def masked(self) -> dict[str, Any]:
        """The effective config as plain data, secrets masked (``config show``).

        Webhook URLs show only scheme, host and port: Slack-style URLs carry their secret in
        the path, others in the query or user info.
        """
        data = self.model_dump(mode="json")
        for sink in data["sinks"]:
            if sink.get("url"):
                sink["url"] = _mask_url(sink["url"])
        return data


__all__ = ["MASK", "Settings", "load"]
_mask_url = mask_url
# Keys whose values are or may hold secrets: a validation error names them, never echoes them.
_SECRET_PARTS = frozenset({"sinks", "url", "token", "sasl_password", "queue_url", "endpoint_url"})


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_CONFIG:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(raw) if raw else raw
    return out


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in top.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors()[:10]:
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{origin}: {key}: unknown key")
        elif _SECRET_PARTS & {str(p) for p in err["loc"]} or isinstance(err.get("input"), dict):
            # the value may be a secret (or a whole section, which may hold one): not echoed
            lines.append(f"{origin}: {key}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"{origin}: {key}: {err['msg']} (got {str(err.get('input'))[:80]!r})")
    return "\n".join(lines)


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate; raises ``ConfigError`` naming file and key on any problem."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    origin = "defaults"
    if path is not None:
        origin = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(loaded).__name__}")
        data = loaded
    overrides = _env_overrides(env)
    if overrides:
        origin = f"{origin} + {ENV_PREFIX}* environment"
        data = _merge(data, overrides)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from exc
    _check_threshold_keys(settings, origin)
    model = default_model.resolve(settings.model)  # an installed detector's demo model ships in the package
    return settings if model == settings.model else settings.model_copy(update={"model": model})


def _check_threshold_keys(settings: Settings, origin: str) -> None:
    """Class and override ``set:`` blocks are free-form dicts: validate them as Thresholds."""
    blocks: list[tuple[str, dict[str, Any]]] = [
        (f"detection.classes.{cls}", values) for cls, values in settings.detection.classes.items()
    ]
    blocks += [(f"detection.overrides.{i}.set", o.set) for i, o in enumerate(settings.detection.overrides)]
    for where, values in blocks:
        try:
            Thresholds.model_validate(_merge(settings.detection.defaults.model_dump(), values))
        except ValidationError as exc:
            raise ConfigError(_format_errors(exc, origin).replace(f"{origin}: ", f"{origin}: {where}.")) from exc


class ThresholdResolver:
    """Effective ``Thresholds`` per principal: defaults, then caller class, then overrides."""

    def __init__(self, detection: Detection, cache_size: int = 50_000) -> None:
        self._detection = detection
        base = detection.defaults.model_dump()
        self._by_class = {
            cls: Thresholds.model_validate(_merge(base, dict(detection.classes.get(cls, {}))))  # type: ignore[call-overload]
            for cls in CALLER_CLASSES
        }
        self._cache: dict[tuple[str, str], Thresholds] = {}
        self._cache_size = cache_size

    def for_principal(self, key: str, role_arn: str, caller_class: str) -> Thresholds:
        hit = self._cache.get((key, caller_class))
        if hit is not None:
            return hit
        t = self._by_class.get(caller_class, self._by_class["human"])
        matched = [o for o in self._detection.overrides if o.matches(key, role_arn, caller_class)]
        if matched:
            merged = t.model_dump()
            for o in matched:
                merged = _merge(merged, o.set)
            t = Thresholds.model_validate(merged)
        return remember(self._cache, (key, caller_class), t, self._cache_size)
