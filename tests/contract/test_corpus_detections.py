"""The shipped configuration against real attacks: Stratus Red Team's recorded techniques
(``stratus-red-team`` in the shared corpus, the ``corpus_dir`` fixture), each replayed on its
own through the real reader and detector (rules only, no model: what a new deployment has on
day one).

Each technique's attacker is a principal the detector has never seen, so only what needs no
history can fire. Techniques that look like routine work for a principal with no history
(reading a secret or a parameter, running an SSM command, launching instances) are listed in
``QUIET`` with the reason, and must stay quiet: if one starts to fire, this list is out of date.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from detector.ingest import Ingest
from detector.pipeline import Detector
from detector.settings import load

ROOT = Path(__file__).resolve().parents[2]

# technique -> why a principal with no history calling it is not (yet) an alert
QUIET = {
    "aws.credential-access.ec2-steal-instance-credentials": "SSM SendCommand: the theft shows when the "
    "instance's credentials are used elsewhere (credential_misuse)",
    "aws.credential-access.secretsmanager-batch-retrieve-secrets": "a first secret read needs something else off",
    "aws.credential-access.secretsmanager-retrieve-secrets": "a first secret read needs something else off",
    "aws.credential-access.ssm-retrieve-securestring-parameters": "GetParameters is how applications start",
    "aws.discovery.ec2-download-user-data": "DescribeInstanceAttribute alone is routine discovery",
    "aws.execution.ec2-launch-unusual-instances": "RunInstances by a principal with no history is routine",
    "aws.execution.ssm-send-command": "SSM commands are routine operations work",
    "aws.execution.ssm-start-session": "SSM sessions are routine operations work",
    "aws.impact.bedrock-invoke-model": "model invocation is not a sensitive API",
    "aws.initial-access.console-login-without-mfa": "no MFA rule (yet)",
    "aws.persistence.lambda-layer-extension": "UpdateFunctionConfiguration is every deployment's call",
    "aws.persistence.lambda-overwrite-code": "UpdateFunctionCode is every deployment's call",
}


def _alerts(path: Path) -> list[str]:
    data = orjson.loads(path.read_bytes())
    records = data if isinstance(data, list) else data["Records"]
    ingest = Ingest(clock=lambda: 2e9)
    events = ingest.blob(orjson.dumps({"Records": records}), path.stem, "file")
    assert events and not ingest.rejected, path.stem
    det = Detector(load(ROOT / "config" / "detector.yaml", env={}), None, store={})
    return [a.kind for a in det.process(events).alerts]


def test_each_recorded_technique_alerts_unless_listed_as_quiet(corpus_dir: Path) -> None:
    paths = sorted((corpus_dir / "stratus-red-team").glob("*.json"))
    techniques = [p.stem for p in paths]
    assert len(techniques) >= 30
    assert set(QUIET) <= set(techniques)
    kinds = {p.stem: _alerts(p) for p in paths}
    assert {t: k for t, k in kinds.items() if t in QUIET and k} == {}, "these now alert: drop them from QUIET"
    assert [t for t, k in kinds.items() if t not in QUIET and not k] == [], "these raise no alert"
