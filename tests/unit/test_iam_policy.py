"""The shipped IAM policy grants exactly the AWS actions the code calls.

Every boto3 operation is found statically: method calls (and ``get_paginator("...")``
arguments) in the modules that use boto3, matched against the operation names of the
services we talk to, as botocore's own service models spell them. IAM action names differ
from API names in a few places (S3's ListObjectsV2 is authorised by s3:ListBucket), listed
explicitly below.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"kinesis": "kinesis", "s3": "s3", "sqs": "sqs", "sns": "sns"}
# API operation -> the IAM action that authorises it, where they differ.
IAM_NAME = {
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def _operations() -> dict[str, set[str]]:
    """snake_case method name -> {"service:Operation", ...} for our services."""
    session = botocore.session.get_session()
    out: dict[str, set[str]] = {}
    for prefix, name in SERVICES.items():
        for op in session.get_service_model(name).operation_names:
            out.setdefault(xform_name(op), set()).add(f"{prefix}:{op}")
    return out


def _called_actions() -> set[str]:
    ops = _operations()
    found: set[str] = set()
    for path in (ROOT / "detector").rglob("*.py"):
        text = path.read_text()
        if "boto" not in text or path.name == "simulate.py":  # the simulator only writes boto-like strings
            continue
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                name = str(node.args[0].value)
            for action in ops.get(name, ()):
                found.add(IAM_NAME.get(action, action))
    return found


def _policy_actions() -> set[str]:
    doc = json.loads((ROOT / "config" / "iam" / "detector-policy.json").read_text())
    actions: set[str] = set()
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        assert st["Resource"] != "*", st["Sid"]
        acts = st["Action"]
        actions.update([acts] if isinstance(acts, str) else acts)
    return actions


def test_policy_grants_exactly_what_the_code_calls() -> None:
    called = _called_actions()
    assert {"kinesis:GetRecords", "s3:GetObject", "sns:Publish"} <= called  # the scan finds real calls
    granted = _policy_actions()
    assert called - granted == set(), "code calls actions the policy does not grant"
    assert granted - called == set(), "policy grants actions the code never calls"


def test_operation_table_covers_the_services() -> None:
    ops = _operations()
    assert "kinesis:GetRecords" in ops["get_records"] and "s3:ListObjectsV2" in ops["list_objects_v2"]
