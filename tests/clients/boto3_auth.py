#!/usr/bin/env python3
"""boto3 through the gateway with each signing style it offers.

    boto3_auth.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET

Prints one line per check, `ok NAME` or `FAIL NAME: reason`; exits 1 if any failed.
"""
import sys
import urllib.request
import urllib.error

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import run_checks

endpoint, ak, sk, bucket = sys.argv[1:5]


def client(signature_version, **extra):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name="us-east-1",
        config=Config(signature_version=signature_version, s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}, **extra),
    )



def fetch(url, method="GET", data=None):
    req = urllib.request.Request(url, method=method, data=data)
    with urllib.request.urlopen(req) as r:
        return r.status, r.read()


def sigv4_header():
    s3 = client("s3v4")
    s3.put_object(Bucket=bucket, Key="boto3/v4 header", Body=b"v4-header")
    assert s3.get_object(Bucket=bucket, Key="boto3/v4 header")["Body"].read() == b"v4-header"


def sigv4_presigned():
    s3 = client("s3v4")
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "boto3/v4 presigned"}, ExpiresIn=300)
    assert fetch(put, "PUT", b"v4-presigned")[0] == 200
    get = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "boto3/v4 presigned"}, ExpiresIn=300)
    assert fetch(get) == (200, b"v4-presigned")


def sigv2_header():
    s3 = client("s3")
    s3.put_object(Bucket=bucket, Key="boto3/v2 header+plus", Body=b"v2-header")
    assert s3.get_object(Bucket=bucket, Key="boto3/v2 header+plus")["Body"].read() == b"v2-header"
    keys = [o["Key"] for o in s3.list_objects(Bucket=bucket, Prefix="boto3/")["Contents"]]
    assert "boto3/v2 header+plus" in keys, keys


def sigv2_presigned():
    s3 = client("s3")
    get = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "boto3/v4 header"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in get and "Signature=" in get, get
    assert fetch(get) == (200, b"v4-header")
    # A bucket's URL: botocore signs its resource as `/bucket/` (path style).
    listing = s3.generate_presigned_url("list_objects", Params={"Bucket": bucket, "Prefix": "boto3/"}, ExpiresIn=300)
    status, body = fetch(listing)
    assert status == 200 and b"<ListBucketResult" in body and b"boto3/v4%20header" in body, (status, body)


def wrong_secret_is_signature_does_not_match():
    bad = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key="0" * 32,
                       region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    try:
        bad.head_bucket(Bucket=bucket)
        raise AssertionError("accepted a wrong secret")
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
    try:
        bad.get_object(Bucket=bucket, Key="boto3/v4 header")
        raise AssertionError("accepted a wrong secret")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response


run_checks([
    ("sigv4-header", sigv4_header),
    ("sigv4-presigned", sigv4_presigned),
    ("sigv2-header", sigv2_header),
    ("sigv2-presigned", sigv2_presigned),
    ("wrong-secret", wrong_secret_is_signature_does_not_match),
])
