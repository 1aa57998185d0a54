#!/usr/bin/env python3
"""An HTML-form upload (POST object, a boto3 SigV4 form) over an object that exists, in a tenant
under HCP's no-overwrite rule on a backend with conditional writes: the gateway sends the
backend's PUT with its own `If-None-Match: *`, and the backend's refusal is HCP's 409.

    boto3_post_object_overwrite.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET KEY

KEY must exist; its content must stay what it was. Prints `ok NAME` or `FAIL NAME: reason`.
"""
import sys
import xml.etree.ElementTree as ET

import boto3
import urllib3
from botocore.config import Config
from harness import run_checks

endpoint, ak, sk, bucket, key = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                  region_name="us-east-1",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                retries={"max_attempts": 1}))


def form_over_an_existing_object():
    before = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    p = s3.generate_presigned_post(bucket, key)
    body = list(p["fields"].items()) + [("file", ("f.txt", b"from a form", "text/plain"))]
    r = urllib3.PoolManager(retries=False).request("POST", p["url"], fields=body)
    assert r.status == 409, (r.status, r.data)
    root = ET.fromstring(r.data)
    assert root.tag == "Error" and root.findtext("Code") == "OperationAborted", r.data
    assert root.findtext("RequestId") and root.findtext("HostId") is not None, r.data
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == before


run_checks([("form_over_an_existing_object", form_over_an_existing_object)])
