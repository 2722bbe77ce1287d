"""Compute hijack (cryptomining): quota checks, then a key pair, an open security group and
RunInstances of large GPU instances in regions the account does not use.

A class no issue names (a generalisation check). Exercises the forest's ``new_region``,
``new_api``, ``new_apis_10m`` and, where the principal never launched instances,
``recon_burst``. Quiet: the victim's own network and tool. Intensity: instances launched.
"""

from __future__ import annotations

from detector.simulate.ids import _hex
from detector.simulate.records import _mgmt
from detector.simulate.scenarios.base import (
    HUMANS,
    Attack,
    Intensity,
    Out,
    Scenario,
    attack_caller,
)
from detector.simulate.world import _REGIONS

_TYPES = ("p3.16xlarge", "g5.12xlarge", "p4d.24xlarge", "g4dn.12xlarge")


def build(a: Attack) -> Out:
    rng, w, pr, p = a.rng, a.world, a.victim, a.plan
    out: Out = []
    n = a.count(1)
    t = a.start(3600)
    c = attack_caller(rng, p, pr, t, new_ip=not a.quiet)
    regions = rng.sample([r for r in _REGIONS if r not in ("us-east-1", "eu-west-1", pr.region)], min(4, 1 + n // 8))
    out.append((t, _mgmt(rng, w, c, t, "ec2:DescribeRegions")))
    per = [n // len(regions) + (1 if i < n % len(regions) else 0) for i in range(len(regions))]
    for region, count in zip(regions, per, strict=True):
        t += rng.uniform(20, 120)
        out.append(
            (
                t,
                _mgmt(
                    rng,
                    w,
                    c,
                    t,
                    "servicequotas:GetServiceQuota",
                    region=region,
                    params={"serviceCode": "ec2", "quotaCode": "L-417A185B"},
                ),
            )
        )
        t += rng.uniform(5, 30)
        out.append((t, _mgmt(rng, w, c, t, "ec2:DescribeImages", region=region)))
        t += rng.uniform(5, 30)
        out.append((t, _mgmt(rng, w, c, t, "ec2:CreateKeyPair", region=region, params={"keyName": f"k{_hex(t, n=6)}"})))
        t += rng.uniform(5, 30)
        sg = f"sg-0{_hex(region, t, n=16)}"
        out.append(
            (
                t,
                _mgmt(
                    rng,
                    w,
                    c,
                    t,
                    "ec2:CreateSecurityGroup",
                    region=region,
                    params={"groupName": f"default-{_hex(t, n=4)}", "groupDescription": "default"},
                ),
            )
        )
        t += rng.uniform(2, 10)
        out.append(
            (
                t,
                _mgmt(
                    rng,
                    w,
                    c,
                    t,
                    "ec2:AuthorizeSecurityGroupIngress",
                    region=region,
                    params={
                        "groupId": sg,
                        "ipPermissions": {
                            "items": [{"ipProtocol": "-1", "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]
                        },
                    },
                ),
            )
        )
        while count > 0:
            batch = min(count, rng.randint(1, 4))
            t += rng.uniform(3, 40)
            out.append(
                (
                    t,
                    _mgmt(
                        rng,
                        w,
                        c,
                        t,
                        "ec2:RunInstances",
                        region=region,
                        params={
                            "instanceType": rng.choice(_TYPES),
                            "minCount": batch,
                            "maxCount": batch,
                            "groupSet": {"items": [{"groupId": sg}]},
                        },
                        deny=rng.random() < 0.2,
                    ),
                )
            )
            count -= batch
    return out


SCENARIO = Scenario(
    name="compute_hijack",
    summary="RunInstances of large GPU instances in regions the account does not use, with an open security group",
    detection="forest: new_region, new_api, new_apis_10m, errors_10m; rule: recon_burst at high intensity",
    intensity=Intensity(2, 10, 60, "instances launched"),
    victims=((*HUMANS, "deploy"), ()),
    build=build,
)
