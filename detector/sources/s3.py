"""CloudTrail archives in S3: list and read ``AWSLogs/.../*.json.gz`` objects for backfill/training.

Errors are by AWS error code, never a bare ``except Exception``: a missing bucket or
missing credentials becomes one ``SourceError`` line that says what to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from detector.errors import SourceError
from detector.sources.file import TooLarge, Unreadable, read_capped


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise SourceError(f"{uri}: not an s3:// URI")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise SourceError(f"{uri}: no bucket name")
    return bucket, prefix


def s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region)


def explain_client_error(exc: Exception, what: str) -> SourceError:
    """Turn a boto error into one line that names the missing thing and the fix."""
    if isinstance(exc, NoCredentialsError):
        return SourceError(
            f"{what}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or run with an instance/task role"
        )
    if isinstance(exc, NoRegionError):
        return SourceError(
            f"{what}: no AWS region is known: set source.region (or AWS_DEFAULT_REGION in the environment)"
        )
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        hints = {
            "NoSuchBucket": "the bucket does not exist (check the name and region)",
            "AccessDenied": "access denied: grant the permissions in config/iam/detector-policy.json",
            "ResourceNotFoundException": "the stream does not exist (check the name, region and endpoint)",
            "InvalidAccessKeyId": "the access key is not valid for this endpoint",
            "ExpiredToken": "the session credentials have expired; refresh them",
            "AWS.SimpleQueueService.NonExistentQueue": "the SQS queue does not exist",
            "NotFound": "the topic or resource does not exist",
        }
        return SourceError(f"{what}: {code}: {hints.get(code, exc.response.get('Error', {}).get('Message', ''))}")
    return SourceError(f"{what}: {exc}")


def list_keys(client: Any, bucket: str, prefix: str, start_after: str = "") -> Iterator[str]:
    """Object keys under ``prefix`` in key order (CloudTrail keys sort by date)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith((".json.gz", ".json")) and "/CloudTrail-Digest/" not in key:
                    yield key
    except (ClientError, BotoCoreError) as exc:
        raise explain_client_error(exc, f"s3://{bucket}/{prefix}") from exc


def get_object(client: Any, bucket: str, key: str) -> bytes:
    """An object's bytes, streamed and capped (``file.TooLarge`` past ``decode.MAX_BLOB_BYTES``)."""
    try:
        resp = client.get_object(Bucket=bucket, Key=key)
        try:
            return read_capped(resp["Body"], size=resp.get("ContentLength"))
        finally:
            resp["Body"].close()
    except (ClientError, BotoCoreError) as exc:
        raise explain_client_error(exc, f"s3://{bucket}/{key}") from exc


def iter_s3_blobs(uri: str, client: Any) -> Iterator[tuple[bytes, str]]:
    bucket, prefix = parse_s3_uri(uri)
    for key in list_keys(client, bucket, prefix):
        try:
            data = get_object(client, bucket, key)
        except TooLarge as exc:  # one bad object: counted and dead-lettered, the others are read
            data = Unreadable.because(exc)
        yield data, f"s3://{bucket}/{key}"
