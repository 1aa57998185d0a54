#!/usr/bin/env python3
"""One HTML-form upload (POST object) from boto3's generate_presigned_post, and the error the
gateway answers it with.

    post_form_status.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET STATUS CODE

Prints `ok form` when the answer is STATUS with HCP's error document of CODE, else
`FAIL form: …`; exits 1 if it failed.
"""
import sys
import xml.etree.ElementTree as ET

import boto3
import urllib3
from botocore.config import Config
from harness import run_checks

endpoint, ak, sk, bucket, status, code = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                  region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def form():
    p = s3.generate_presigned_post(bucket, "form-object")
    body = list(p["fields"].items()) + [("file", ("f.txt", b"form data", "text/plain"))]
    r = urllib3.PoolManager(retries=False).request("POST", p["url"], fields=body)
    assert r.status == int(status), (r.status, r.data)
    root = ET.fromstring(r.data)
    assert root.tag == "Error" and root.findtext("Code") == code, r.data
    assert root.findtext("RequestId"), r.data


run_checks([("form", form)])
