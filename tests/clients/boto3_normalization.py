#!/usr/bin/env python3
"""boto3 reading the gateway's HCP answers.

    boto3_normalization.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET

Prints `ok NAME` or `FAIL NAME: reason` per check; exits 1 if any failed.
"""
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import run_checks

endpoint, ak, sk, bucket = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
SECURITY = {"x-frame-options": "SAMEORIGIN", "x-content-type-options": "nosniff", "x-xss-protection": "1; mode=block"}



def error_of(call):
    try:
        call()
    except ClientError as e:
        return e.response
    raise AssertionError("the call succeeded")


def codes_parse():
    r = error_of(lambda: s3.get_object(Bucket=bucket, Key="missing"))
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("NoSuchKey", 404), r
    assert r["Error"]["Key"] == "missing", r
    r = error_of(lambda: s3.list_objects_v2(Bucket=bucket + "-nope"))
    assert (r["Error"]["Code"], r["Error"]["BucketName"]) == ("NoSuchBucket", bucket + "-nope"), r
    r = error_of(lambda: s3.create_bucket(Bucket="no_underscores"))
    assert r["Error"]["Code"] == "InvalidBucketName", r


def complete_failure_is_a_failure():
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpu")
    s3.upload_part(Bucket=bucket, Key="mpu", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 1024)
    r = error_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="mpu", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]}))
    assert r["Error"]["Code"] == "InvalidPart", r
    assert s3.list_parts(Bucket=bucket, Key="mpu", UploadId=up["UploadId"])["Parts"], "the upload stays open"


def security_headers():
    s3.put_object(Bucket=bucket, Key="h", Body=b"1")
    for name, headers in [
        ("success", s3.get_object(Bucket=bucket, Key="h")["ResponseMetadata"]["HTTPHeaders"]),
        ("head", s3.head_object(Bucket=bucket, Key="h")["ResponseMetadata"]["HTTPHeaders"]),
        ("error", error_of(lambda: s3.get_object(Bucket=bucket, Key="nope"))["ResponseMetadata"]["HTTPHeaders"]),
        ("head error", error_of(lambda: s3.head_object(Bucket=bucket, Key="nope"))["ResponseMetadata"]["HTTPHeaders"]),
    ]:
        for h, v in SECURITY.items():
            assert headers.get(h) == v, (name, h, headers)
        # HCP's own Server, never the backend's.
        assert headers.get("server") == "HCP V9.0.0.2", (name, headers)


def pretty_listing_parses():
    def add_header(request, **_):
        request.headers["x-hcp-pretty-print"] = "true"
    pretty = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    pretty.meta.events.register("before-sign.s3.ListObjectsV2", add_header)
    out = pretty.list_objects_v2(Bucket=bucket)
    assert "h" in [o["Key"] for o in out["Contents"]], out
    assert out["Name"] == bucket, out


run_checks([("codes-parse", codes_parse), ("complete-failure", complete_failure_is_a_failure),
            ("security-headers", security_headers), ("pretty-listing", pretty_listing_parses)])
