"""Privilege escalation: list users, maybe create one, attach AdministratorAccess, create an
access key and a console password for it.

Exercises ``sensitive_api_first_use`` (CreateAccessKey, AttachUserPolicy, CreateLoginProfile...)
and the forest's ``new_api``, ``new_apis_10m``. Quiet: the victim's network and tool, usual
hours. Intensity: escalation steps (1-4).
"""

from __future__ import annotations

from typing import Any

from detector.simulate.ids import _expiration, _token
from detector.simulate.plan import _ADMIN_POLICY
from detector.simulate.records import _DRAW, _mgmt
from detector.simulate.scenarios.base import (
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
)


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    t = a.start(1800)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet and rng.random() < 0.6)
    users = [u for u in w.names[pr.account_id].users if u != pr.name]
    created_user = rng.random() < 0.5 or not users
    target = rng.choice(("support-temp", "backup-svc", "ci-legacy")) if created_user else rng.choice(users)
    stamp = _expiration(t)
    steps: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
    if created_user:
        steps.append(
            (
                "iam:CreateUser",
                {"userName": target},
                {
                    "user": {
                        "path": "/",
                        "userName": target,
                        "userId": "AIDA" + _token(pr.account_id, target, n=17),
                        "arn": f"arn:aws:iam::{pr.account_id}:user/{target}",
                        "createDate": stamp,
                    }
                },
            )
        )
    steps += [
        ("iam:AttachUserPolicy", {"userName": target, "policyArn": _ADMIN_POLICY}, None),
        (
            "iam:CreateAccessKey",
            {"userName": target},
            {
                "accessKey": {
                    "userName": target,
                    "accessKeyId": "AKIA" + _token(p.seed, pr.key, target),
                    "status": "Active",
                    "createDate": stamp,
                }
            },
        ),
        (
            "iam:CreateLoginProfile",
            {"userName": target, "passwordResetRequired": False},
            {"loginProfile": {"userName": target, "createDate": stamp, "passwordResetRequired": False}},
        ),
    ]
    steps = steps[: a.count(1)]
    recon: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("iam:ListUsers", None, None),
        ("iam:ListAttachedUserPolicies", {"userName": target}, None),
    ]
    for key, params, response in recon[:1] + steps[:1] + recon[1:] + steps[1:]:
        t += rng.uniform(5, 120)
        out.append((t, _mgmt(rng, w, c, t, key, params=_DRAW if params is None else params, response=response)))
    return out


SCENARIO = Scenario(
    name="privilege_escalation",
    summary="CreateAccessKey / AttachUserPolicy AdministratorAccess / CreateLoginProfile on a user",
    detection="rule: sensitive_api_first_use; forest: new_api, new_apis_10m",
    intensity=Intensity(1, 3, 4, "escalation steps"),
    victims=(("human_iam_user", "human_sso", "lambda"), ()),
    build=build,
)
