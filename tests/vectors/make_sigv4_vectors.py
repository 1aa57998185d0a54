#!/usr/bin/env python3
"""Writes tests/vectors/sigv4.toml: published SigV4 examples with their canonical request and
string to sign computed here, independently of the gateway's Rust code. A case is written only
if the signature computed here equals the published one."""
import hashlib
import hmac
import json
import os

EMPTY = hashlib.sha256(b"").hexdigest()
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CASES = [
    # name, method, path (as sent), query, headers, payload, secret, date, region, service, published signature
    ("s3-get-object-range", "GET", "/test.txt", "",
     [("host", "examplebucket.s3.amazonaws.com"), ("range", "bytes=0-9"), ("x-amz-content-sha256", EMPTY), ("x-amz-date", "20130524T000000Z")],
     EMPTY, S3_SECRET, "20130524", "us-east-1", "s3", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
    ("s3-put-object", "PUT", "/test$file.text", "",
     [("date", "Fri, 24 May 2013 00:00:00 GMT"), ("host", "examplebucket.s3.amazonaws.com"),
      ("x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"),
      ("x-amz-date", "20130524T000000Z"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", S3_SECRET, "20130524", "us-east-1", "s3",
     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
    ("s3-get-bucket-lifecycle", "GET", "/", "lifecycle",
     [("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", EMPTY), ("x-amz-date", "20130524T000000Z")],
     EMPTY, S3_SECRET, "20130524", "us-east-1", "s3", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    ("s3-list-objects", "GET", "/", "max-keys=2&prefix=J",
     [("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", EMPTY), ("x-amz-date", "20130524T000000Z")],
     EMPTY, S3_SECRET, "20130524", "us-east-1", "s3", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ("s3-streaming-seed", "PUT", "/examplebucket/chunkObject.txt", "",
     [("content-encoding", "aws-chunked"), ("content-length", "66824"), ("host", "s3.amazonaws.com"),
      ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), ("x-amz-date", "20130524T000000Z"),
      ("x-amz-decoded-content-length", "66560"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", S3_SECRET, "20130524", "us-east-1", "s3",
     "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
    ("suite-get-vanilla", "GET", "/", "",
     [("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
     EMPTY, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
]

# More cases of the SigV4 test suite (service "service", 2015-08-30). Each is kept only if the
# signature computed here equals the published one (a mis-copied value cannot match by chance).
SUITE = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BASE = [("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")]
UNRES = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SUITE_CASES = [
    ("suite-get-vanilla-empty-query-key", "GET", "/", "Param1=value1", BASE, "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
    ("suite-get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", BASE, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("suite-get-vanilla-query-unreserved", "GET", "/", f"{UNRES}={UNRES}", BASE, "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
    ("suite-get-unreserved", "GET", "/" + UNRES, "", BASE, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    ("suite-get-utf8", "GET", "/\u1234", "", BASE, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ("suite-post-vanilla", "POST", "/", "", BASE, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("suite-post-vanilla-query", "POST", "/", "Param1=value1", BASE, "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
    ("suite-get-header-value-trim", "GET", "/", "",
     [("host", "example.amazonaws.com"), ("my-header1", " value1"), ("my-header2", ' "a   b   c"'), ("x-amz-date", "20150830T123600Z")],
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("suite-get-header-key-duplicate", "GET", "/", "",
     [("host", "example.amazonaws.com"), ("my-header1", "value2"), ("my-header1", "value2"), ("my-header1", "value1"), ("x-amz-date", "20150830T123600Z")],
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
    ("suite-get-header-value-order", "GET", "/", "",
     [("host", "example.amazonaws.com"), ("my-header1", "value4"), ("my-header1", "value1"), ("my-header1", "value3"), ("my-header1", "value2"), ("x-amz-date", "20150830T123600Z")],
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
    ("suite-post-header-key-case", "POST", "/", "", BASE, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("suite-post-header-value-case", "POST", "/", "",
     [("host", "example.amazonaws.com"), ("my-header1", "VALUE1"), ("x-amz-date", "20150830T123600Z")],
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
]

UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def enc(s, keep_slash):
    return "".join(chr(b) if b in UNRESERVED or (keep_slash and b == ord("/")) else "%%%02X" % b for b in s.encode())


def canonical(method, path, query, headers, payload):
    pairs = sorted((enc(n, False), enc(v, False)) for n, _, v in (p.partition("=") for p in query.split("&") if p))
    cq = "&".join(f"{n}={v}" for n, v in pairs)
    names = sorted({n for n, _ in headers})
    ch = "".join(f"{n}:{','.join(' '.join(v.split()) for k, v in headers if k == n)}\n" for n in names)
    return "\n".join([method, enc(path, True), cq, ch, ";".join(names), payload]), ";".join(names)


def mac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def computed(method, path, query, headers, payload, secret, date, region, service):
    creq, signed = canonical(method, path, query, headers, payload)
    amz = dict(headers)["x-amz-date"]
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = mac(mac(mac(mac(("AWS4" + secret).encode(), date), region), service), "aws4_request")
    return creq, signed, sts, hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


dropped = []
for name, method, path, query, headers, published in SUITE_CASES:
    sig = computed(method, path, query, headers, EMPTY, SUITE, "20150830", "us-east-1", "service")[3]
    if sig == published:
        CASES.append((name, method, path, query, headers, EMPTY, SUITE, "20150830", "us-east-1", "service", published))
    else:
        dropped.append(name)
if dropped:
    print("not reproduced, left out:", ", ".join(dropped))

out = ["# Generated by make_sigv4_vectors.py: published SigV4 signatures (S3 API reference examples,",
       "# the S3 streaming example's seed signature, the SigV4 test suite's get-vanilla) with canonical",
       "# request and string to sign computed independently of the gateway.", ""]
for name, method, path, query, headers, payload, secret, date, region, service, published in CASES:
    creq, signed = canonical(method, path, query, headers, payload)
    amz = dict(headers)["x-amz-date"]
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = mac(mac(mac(mac(("AWS4" + secret).encode(), date), region), service), "aws4_request")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    assert sig == published, (name, sig)
    out += ["[[case]]", f"name = {json.dumps(name)}", f"method = {json.dumps(method)}", f"path = {json.dumps(path)}",
            f"query = {json.dumps(query)}", "headers = [" + ", ".join(f"[{json.dumps(n)}, {json.dumps(v)}]" for n, v in headers) + "]",
            f"signed_headers = {json.dumps(signed)}", f"payload = {json.dumps(payload)}", f"secret = {json.dumps(secret)}",
            f"date = {json.dumps(date)}", f"region = {json.dumps(region)}", f"service = {json.dumps(service)}",
            f"canonical_request = {json.dumps(creq)}", f"string_to_sign = {json.dumps(sts)}", f"signature = {json.dumps(sig)}", ""]
with open(os.path.join(os.path.dirname(__file__), "sigv4.toml"), "w") as f:
    f.write("\n".join(out))
print(f"wrote {len(CASES)} cases")
