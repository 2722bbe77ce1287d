"""Baseline keys and caller classes for every userIdentity type, on real corpus shapes."""

from __future__ import annotations

import orjson
import pytest

from detector.principal import ANONYMOUS, AUTOMATION, AWS_SERVICE, HUMAN, principal_of
from tests.factories import assumed_role, cloudtrail, iam_user

SSO = "AWSReservedSSO_Developer_0123456789abcdef"


def test_iam_user_key_is_its_arn_and_cli_user_is_human() -> None:
    p = principal_of(cloudtrail(identity=iam_user("bob")))
    assert p.key == "arn:aws:iam::111122223333:user/bob"
    assert p.caller_class == HUMAN


def test_an_iam_users_class_is_left_to_its_own_history_never_to_one_events_client() -> None:
    # the user agent is the caller's to choose: it never moves an IAM user to another baseline
    # or class on its own; the baseline settles the class from the user's first events
    cli = principal_of(cloudtrail(identity=iam_user("svc")))
    sdk = principal_of(cloudtrail(identity=iam_user("svc"), ua="aws-sdk-java/1.12.500 Linux/5.10"))
    assert cli == sdk and sdk.caller_class == HUMAN and sdk.class_open


def test_session_names_the_caller_invents_never_make_new_principals() -> None:
    keys = {
        principal_of(cloudtrail(identity=assumed_role("deploy-role", name))).key
        for name in ("john.smith", "jane.doe@example.com", "ci-42", "x" * 64, "Admin")
    }
    assert keys == {"arn:aws:iam::111122223333:role/deploy-role"}
    p = principal_of(cloudtrail(identity=assumed_role("deploy-role", "john.smith")))
    assert p.caller_class == AUTOMATION and p.class_open and p.session == "john.smith"


@pytest.mark.parametrize(
    "session",
    [
        "i-0317f6c6b66ae9c40",
        "3f2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d",
        "botocore-session-1700000000",
        "aws-go-sdk-1722375070115152000",
    ],
)
def test_automation_sessions_share_the_role_baseline(session: str) -> None:
    p = principal_of(cloudtrail(identity=assumed_role("app-role", session, path="service-role/")))
    assert p.key == "arn:aws:iam::111122223333:role/service-role/app-role"
    assert p.caller_class == AUTOMATION
    assert p.session == session


def test_people_behind_one_sso_role_get_their_own_baselines() -> None:
    a = principal_of(cloudtrail(identity=assumed_role(SSO, "Ana.Lopez@example.com")))
    b = principal_of(cloudtrail(identity=assumed_role(SSO, "bo.chen@example.com")))
    assert a.key != b.key
    assert a.key.endswith("/ana.lopez@example.com")
    assert a.caller_class == b.caller_class == HUMAN
    assert a.role_arn == b.role_arn == f"arn:aws:iam::111122223333:role/{SSO}"


def test_saml_federated_role_with_user_name_session_is_per_person() -> None:
    p = principal_of(cloudtrail(identity=assumed_role("okta-engineers", "jane.doe")))
    assert p.caller_class == HUMAN
    assert p.key.endswith("role/okta-engineers/jane.doe")


def test_assumed_role_without_session_issuer_derives_the_role_arn() -> None:
    ident = assumed_role("level1", "level1")
    del ident["sessionContext"]
    p = principal_of(cloudtrail(identity=ident))
    assert p.key == "arn:aws:iam::111122223333:role/level1"


def test_aws_service_root_federated_identity_center_and_anonymous() -> None:
    svc = principal_of(cloudtrail(identity={"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}))
    assert (svc.key, svc.caller_class) == ("service:cloudtrail.amazonaws.com", AWS_SERVICE)
    root = principal_of(
        cloudtrail(identity={"type": "Root", "accountId": "111122223333", "arn": "arn:aws:iam::111122223333:root"})
    )
    assert root.key == "arn:aws:iam::111122223333:root"
    fed = principal_of(
        cloudtrail(identity={"type": "FederatedUser", "arn": "arn:aws:sts::1:federated-user/x", "accountId": "1"})
    )
    assert fed.key == "arn:aws:sts::1:federated-user/x"
    idc = principal_of(
        cloudtrail(
            identity={
                "type": "IdentityCenterUser",
                "accountId": "1",
                "onBehalfOf": {"userId": "u-1", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"},
            }
        )
    )
    assert idc.key == "identity-center:arn:aws:identitystore::1:identitystore/d-1/u-1"
    assert idc.caller_class == HUMAN
    anon = principal_of(
        cloudtrail(identity={"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"})
    )
    assert (anon.key, anon.caller_class) == ("anonymous@111122223333", ANONYMOUS)
    absent = cloudtrail()
    del absent["userIdentity"]
    assert principal_of(absent).caller_class == ANONYMOUS


def test_cross_account_access_is_keyed_by_the_calling_account() -> None:
    p = principal_of(
        cloudtrail(identity={"type": "AWSAccount", "principalId": "AROAX:sess", "accountId": "444455556666"})
    )
    assert p.key == "account:444455556666"


def test_every_corpus_identity_gets_a_nonempty_key(corpus_dir) -> None:
    seen = 0
    for line in (corpus_dir / "labelled-real-events.jsonl").read_bytes().splitlines():
        p = principal_of(orjson.loads(line)["event"])
        assert p.key and p.caller_class in (HUMAN, AUTOMATION, AWS_SERVICE, ANONYMOUS)
        seen += 1
    assert seen == 462


@pytest.mark.parametrize(
    ("role", "per_person"),
    [
        ("AWSReservedSSO_Developer_1094fd6a1140d211", True),
        ("okta-engineers", True),
        ("saml_readonly", True),
        ("federated-analysts", True),
        ("payments-processor-role-f5dcd988", False),  # "processor" holds "sso": a name part must match
        ("lesson-uploader", False),
        ("AccessorRole", False),
    ],
)
def test_a_role_is_per_person_only_for_whole_identity_provider_name_parts(role: str, per_person: bool) -> None:
    p = principal_of(cloudtrail(identity=assumed_role(role, "jane.doe")))
    assert p.key.endswith(f"role/{role}/jane.doe") == per_person
    assert (p.caller_class == "human") == per_person or p.class_open
