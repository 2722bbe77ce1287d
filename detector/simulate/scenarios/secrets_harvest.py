"""Secrets harvest: after ListSecrets, GetSecretValue on secret after secret (and SSM parameters
with decryption), far more than the caller ever reads, some denied.

A class no issue names (a generalisation check). Exercises ``sensitive_api_first_use`` for a
first credential read with something else off, and the forest's ``secret_reads_10m`` (the
caller's own rate of credential reads: a busy role's overall rate hides the harvest),
``new_apis_10m`` and ``errors_10m``. Quiet: the caller's own network and tool. Intensity: secrets read.
"""

from __future__ import annotations

from detector.simulate.records import _mgmt
from detector.simulate.scenarios.base import (
    HUMANS,
    WORKLOADS,
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
)
from detector.simulate.world import _WORDS

_KINDS = ("db-password", "api-key", "oauth-client-secret", "signing-key", "smtp-credentials", "stripe-key")


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    n = a.count(2)
    span = max(120.0, n * rng.uniform(3, 12))
    t = a.start(span + 600)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet)
    names = list(dict.fromkeys(w.names[pr.account_id].secrets + [f"prod/{x}/{k}" for x in _WORDS for k in _KINDS]))
    rng.shuffle(names)
    out.append((t, _mgmt(rng, w, c, t, "secretsmanager:ListSecrets")))
    for i in range(n):
        t += rng.expovariate(n / span)
        if i % 5 == 4:
            path = f"/prod/{rng.choice(_WORDS)}/"
            out.append(
                (
                    t,
                    _mgmt(
                        rng,
                        w,
                        c,
                        t,
                        "ssm:GetParametersByPath",
                        params={"path": path, "recursive": True, "withDecryption": True},
                    ),
                )
            )
        else:
            out.append(
                (
                    t,
                    _mgmt(
                        rng,
                        w,
                        c,
                        t,
                        "secretsmanager:GetSecretValue",
                        params={"secretId": names[i % len(names)]},
                        deny=rng.random() < 0.25,
                    ),
                )
            )
    return out


SCENARIO = Scenario(
    name="secrets_harvest",
    summary="GetSecretValue on secret after secret (and SSM parameters with decryption) after ListSecrets",
    detection="rule: sensitive_api_first_use (with something off); forest: secret_reads_10m, new_apis_10m, errors_10m",
    intensity=Intensity(5, 25, 200, "secrets read"),
    victims=((*WORKLOADS, *HUMANS), ()),
    build=build,
)
