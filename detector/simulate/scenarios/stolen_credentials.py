"""Stolen workload credentials: a service role's temporary key replayed from outside, as in the
OTRF EC2-proxy and flaws2.cloud cases: whoami, list buckets, list and read a few, poke at IAM.

Exercises ``credential_misuse`` (an automation role used by a desktop client, or a new client
from a new network) and the forest's ``new_network``, ``new_client``, ``new_api``, ``failed``.
Quiet: the attacker uses the workload's own SDK user agent, so only the network is new.
Intensity: objects read.
"""

from __future__ import annotations

from detector.simulate.records import _mgmt, _object_key, _s3, _size
from detector.simulate.scenarios.base import Attack, Intensity, Out, Scenario, attack_caller, pick_time
from detector.simulate.world import _ATTACK_UAS, _BUCKETS


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    t = pick_time(rng, p, 5400, 0.0, None)
    ua = "" if a.quiet else rng.choice((_ATTACK_UAS[0], _ATTACK_UAS[2]))
    c = attack_caller(rng, p, pr, t, new_ip=True, ua=ua)
    out.append((t, _mgmt(rng, w, c, t, "sts:GetCallerIdentity")))
    t += rng.uniform(5, 60)
    out.append((t, _mgmt(rng, w, c, t, "s3:ListBuckets")))
    candidates = [w.buckets[b.name] for b in _BUCKETS if b.account_id == pr.account_id and b.shape != "trail"]
    chosen = rng.sample(candidates, min(len(candidates), rng.randint(2, 4)))
    readable = [b for b in chosen if b.name in pr.buckets or b.name in pr.write_buckets or rng.random() < 0.4]
    left = a.count(1)
    for bucket in chosen:
        allowed = bucket in readable
        t += rng.uniform(20, 240)
        out.append(
            (
                t,
                _s3(
                    rng,
                    c,
                    t,
                    "ListObjects",
                    bucket,
                    "",
                    error=None if allowed else ("AccessDenied", "Access Denied"),
                    command="s3.ls",
                ),
            )
        )
        if not allowed:
            continue
        share = left if bucket is readable[-1] else max(1, left // max(1, len(readable)))
        for i in range(share):
            t += rng.uniform(2, 45)
            out.append(
                (
                    t,
                    _s3(
                        rng,
                        c,
                        t,
                        "GetObject",
                        bucket,
                        _object_key(rng, bucket, t, i),
                        size=_size(rng, bucket),
                        command="s3.cp",
                    ),
                )
            )
        left = max(0, left - share)
    for key in rng.sample(("ec2:DescribeInstances", "iam:ListRoles", "secretsmanager:ListSecrets", "iam:ListUsers"), 2):
        t += rng.uniform(10, 120)
        out.append((t, _mgmt(rng, w, c, t, key, deny=key.startswith(("iam", "secrets")))))
    return out


SCENARIO = Scenario(
    name="stolen_credentials",
    summary="a service role's credentials used from an outside laptop: whoami, list buckets, read",
    detection="rule: credential_misuse; forest: new_network, new_client, new_api, failed",
    intensity=Intensity(2, 20, 100, "objects read"),
    victims=(("ec2_instance",), ("lambda",)),
    build=build,
)
