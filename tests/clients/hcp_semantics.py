#!/usr/bin/env python3
"""HCP's semantics beyond the error table, through real clients (boto3, the aws cli, s3cmd):
folders, no overwrite, versioning, custom metadata and the encryption question.

    hcp_semantics.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET

The tenant keeps folders (`folders = true`) and HCP's no-overwrite rule; BUCKET exists and is
empty. Prints `ok NAME` or `FAIL NAME: reason` per check; exits 1 if any failed.
"""
import os
import sys
import tempfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import run_checks
from matrix import AwsCli, S3cmd

endpoint, ak, sk, bucket = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                  region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
aws = AwsCli(endpoint, ak, sk)
s3cmd = S3cmd(endpoint, ak, sk, v2=False)


def keys(prefix=""):
    out = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in out.get("Contents", [])]


def error_of(call):
    try:
        call()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    raise AssertionError("no error")


def local_file(data):
    f = tempfile.NamedTemporaryFile(delete=False)
    f.write(data)
    f.close()
    return f.name


def folders():
    # boto3, the aws cli and s3cmd each store under a path; the folders appear once.
    s3.put_object(Bucket=bucket, Key="reports/2020/q4.txt", Body=b"q4")
    aws.aws("s3", "cp", "--only-show-errors", local_file(b"q3"), f"s3://{bucket}/reports/2020/q3.txt")
    s3cmd.s3cmd("put", local_file(b"q2"), f"s3://{bucket}/reports/2021/q2.txt")
    listed = keys("reports")
    assert listed == ["reports/", "reports/2020/", "reports/2020/q3.txt", "reports/2020/q4.txt",
                      "reports/2021/", "reports/2021/q2.txt"], listed
    # A folder by itself; HEAD 200, GET 404.
    s3.put_object(Bucket=bucket, Key="empty/", Body=b"")
    assert s3.head_object(Bucket=bucket, Key="empty/")["ContentLength"] == 0
    assert error_of(lambda: s3.get_object(Bucket=bucket, Key="empty/")) == (404, "NoSuchKey")
    assert error_of(lambda: s3.put_object(Bucket=bucket, Key="empty/", Body=b"")) == (409, "OperationAborted")
    # The aws cli's delimiter listing shows the folders as HCP's common prefixes.
    out = aws.aws("s3", "ls", f"s3://{bucket}/reports/").stdout
    assert "PRE 2020/" in out and "PRE 2021/" in out, out


def no_overwrite():
    # (After the 409s above on a reused connection: botocore parsed the next answer with the
    # 409's status until the gateway closed such connections.)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"first")
    assert error_of(lambda: s3.put_object(Bucket=bucket, Key="kept", Body=b"second")) == (409, "OperationAborted")
    out = aws.aws("s3", "cp", local_file(b"third"), f"s3://{bucket}/kept", expect_ok=False)
    assert out.returncode != 0 and "OperationAborted" in out.stderr, out.stderr
    out = s3cmd.s3cmd("put", local_file(b"fourth"), f"s3://{bucket}/kept", expect_ok=False)
    assert out.returncode != 0 and "409" in out.stderr, out.stderr
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"first"
    # An empty object stored (no body, yet botocore asks for 100 Continue), then a refused
    # body on the same connection: the refusal is reported, not the 200 before it.
    s3.put_object(Bucket=bucket, Key="empty-object", Body=b"")
    refused = lambda: s3.put_object(Bucket=bucket, Key="bad-digest", Body=b"x",
                                    ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")
    assert error_of(refused)[0] == 400, "a refused body reported as stored"
    assert "bad-digest" not in keys("bad")


def versioning():
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"two")["VersionId"]
    listed = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix="doc")["Versions"]]
    assert listed == [v1, v2], (listed, v1, v2)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)["Body"].read() == b"two"
    out = s3.put_object(Bucket=bucket, Key="after", Body=b"x")
    assert "VersionId" not in out, out


def metadata():
    s3.put_object(Bucket=bucket, Key="meta", Body=b"m",
                  Metadata={"city$town": "Paris", "empty": "", "dept": "Sales"})
    got = s3.head_object(Bucket=bucket, Key="meta")["Metadata"]
    assert got.get("dept") == "Sales" and "empty" not in got, got
    assert got.get("city_town") == "Paris" or got.get("city-town") == "Paris", got


def encryption():
    out = s3.put_object(Bucket=bucket, Key="sse", Body=b"s", ServerSideEncryption="AES256")
    assert out.get("ServerSideEncryption") == "None", out
    out = s3.put_object(Bucket=bucket, Key="plain-sse", Body=b"p")
    assert "ServerSideEncryption" not in out, out
    out = aws.aws("s3api", "head-object", "--bucket", bucket, "--key", "sse").stdout
    assert "ServerSideEncryption" not in out, out


run_checks([("folders", folders), ("no_overwrite", no_overwrite), ("versioning", versioning),
            ("metadata", metadata), ("encryption", encryption)])
