#!/usr/bin/env python3
"""HTML-form uploads (POST object) as browsers send them, with forms from boto3's
generate_presigned_post (SigV4 and SigV2) and posted by urllib3.

    boto3_post_object.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET ANONYMOUS_BUCKET

Prints `ok NAME` or `FAIL NAME: reason` per check; exits 1 if any failed.
"""
import sys
import xml.etree.ElementTree as ET

import boto3
import urllib3
from botocore.config import Config
from harness import run_checks

endpoint, ak, sk, bucket, anonymous_bucket = sys.argv[1:6]
http = urllib3.PoolManager(retries=False)


def client(signature_version):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1",
                        config=Config(signature_version=signature_version, s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


s3 = client("s3v4")
s3v2 = client("s3")



def post(url, fields, content, headers=None):
    body = list(fields.items()) + [("file", ("hello.txt", content, "text/plain"))]
    return http.request("POST", url, fields=body, headers=headers or {})


def hcp_error(r, status, code):
    assert r.status == status, (r.status, r.data)
    root = ET.fromstring(r.data)
    assert root.tag == "Error" and root.findtext("Code") == code, r.data
    assert root.findtext("RequestId") and root.findtext("HostId") is not None, r.data
    assert r.headers.get("x-frame-options") == "SAMEORIGIN", r.headers


def body_of(key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def sigv4_upload():
    p = s3.generate_presigned_post(bucket, "up/${filename}",
                                   Conditions=[["starts-with", "$key", "up/"], ["content-length-range", 1, 1000]])
    r = post(p["url"], p["fields"], b"form data")
    assert r.status == 204, (r.status, r.data)
    assert r.headers["ETag"].strip('"'), r.headers
    assert body_of("up/hello.txt") == b"form data"


def sigv2_upload_with_201():
    p = s3v2.generate_presigned_post(bucket, "v2", Fields={"success_action_status": "201"},
                                     Conditions=[{"success_action_status": "201"}])
    assert "AWSAccessKeyId" in p["fields"], p
    r = post(p["url"], p["fields"], b"v2 data")
    assert r.status == 201, (r.status, r.data)
    root = ET.fromstring(r.data)
    assert root.tag == "PostResponse" and root.findtext("Key") == "v2" and root.findtext("Bucket") == bucket, r.data
    assert body_of("v2") == b"v2 data"


def policy_conditions():
    p = s3.generate_presigned_post(bucket, "up/a", Conditions=[["starts-with", "$key", "up/"],
                                                                ["content-length-range", 1, 4]])
    hcp_error(post(p["url"], p["fields"], b"too long"), 400, "InvalidPolicyDocument")
    fields = dict(p["fields"], key="elsewhere")
    hcp_error(post(p["url"], fields, b"x"), 400, "InvalidPolicyDocument")
    fields = dict(p["fields"], **{"x-amz-meta-extra": "not in the policy"})
    hcp_error(post(p["url"], fields, b"x"), 400, "InvalidPolicyDocument")
    expired = s3.generate_presigned_post(bucket, "late", ExpiresIn=-60)
    hcp_error(post(expired["url"], expired["fields"], b"x"), 403, "AccessDenied")
    for key in ["up/a", "elsewhere", "late"]:
        assert_absent(key)


def assert_absent(key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
        return
    raise AssertionError(f"{key} was stored")


def signatures_and_keys():
    p = s3.generate_presigned_post(bucket, "sig")
    fields = dict(p["fields"], **{"x-amz-signature": "0" * 64})
    hcp_error(post(p["url"], fields, b"x"), 403, "SignatureDoesNotMatch")
    fields = {k: v for k, v in p["fields"].items() if k != "policy"}
    hcp_error(post(p["url"], fields, b"x"), 400, "InvalidPolicyDocument")
    fields = {k: v for k, v in p["fields"].items() if k != "key"}
    hcp_error(post(p["url"], fields, b"x"), 400, "UserKeyMustBeSpecified")


def not_a_form():
    url = f"{endpoint}/{bucket}"
    r = http.request("POST", url, body=b"key=k&file=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    hcp_error(r, 400, "MalformedPOSTRequest")
    r = http.request("POST", url, body=b"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--b--\r\n",
                     headers={"Content-Type": "multipart/form-data; boundary=b"})
    hcp_error(r, 400, "MalformedPOSTRequest")
    p = s3.generate_presigned_post(bucket, "hcp-auth")
    hcp_error(post(p["url"], p["fields"], b"x", {"Authorization": "HCP dGVzdA==:0123"}), 403, "AccessDenied")


def anonymous_forms():
    r = post(f"{endpoint}/{anonymous_bucket}", {"key": "dropped"}, b"anonymous")
    assert r.status == 204, (r.status, r.data)
    hcp_error(post(f"{endpoint}/{bucket}", {"key": "nope"}, b"x"), 403, "AccessDenied")


def status_200_when_asked():
    p = s3.generate_presigned_post(bucket, "ok200", Fields={"success_action_status": "200"},
                                   Conditions=[{"success_action_status": "200"}])
    r = post(p["url"], p["fields"], b"200 data")
    assert r.status == 200, (r.status, r.data)
    assert body_of("ok200") == b"200 data"


def encryption_question():
    # HCP's x-amz-server-side-encryption, asked with a form field: any value, answered
    # None where the data is not kept encrypted; no field, no answer.
    fields = {"x-amz-server-side-encryption": "any text"}
    p = s3.generate_presigned_post(bucket, "sse-form", Fields=fields, Conditions=[fields])
    r = post(p["url"], p["fields"], b"sse")
    assert r.status == 204, (r.status, r.data)
    assert r.headers.get("x-amz-server-side-encryption") == "None", r.headers
    assert body_of("sse-form") == b"sse"
    p = s3.generate_presigned_post(bucket, "no-sse-form")
    r = post(p["url"], p["fields"], b"plain")
    assert r.status == 204, (r.status, r.data)
    assert "x-amz-server-side-encryption" not in r.headers, r.headers


run_checks([("sigv4_upload", sigv4_upload), ("encryption_question", encryption_question),
            ("status_200_when_asked", status_200_when_asked), ("sigv2_upload_with_201", sigv2_upload_with_201),
            ("policy_conditions", policy_conditions), ("signatures_and_keys", signatures_and_keys),
            ("not_a_form", not_a_form), ("anonymous_forms", anonymous_forms)])
