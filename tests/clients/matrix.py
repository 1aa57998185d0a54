"""The client matrix for the Python-side clients: boto3, the aws cli (v1), s3cmd with SigV2 and
with SigV4, rclone and minio-py. Each runs the same scenario against the gateway with its own
code paths (its own signing, multipart splitting, listing, presigning and error reporting):

    create bucket, put a small object, put a 64 MiB + 1 KiB object (multipart), get both back
    byte-identical, list, fetch a presigned GET URL, provoke one HCP error the client must
    report with HCP's code, send a tree of files in folders up and back with the client's own
    recursive tools (sync, check, recursive listing, copy) and remove it, delete the objects
    and the bucket.

    python3 matrix.py CLIENT ENDPOINT ACCESS_KEY SECRET_KEY BUCKET [long-keys]

With `long-keys` (a backend that stores HCP's keys of up to 4,095 bytes) the tree holds a file
whose key is over 1,100 bytes, 24 folders deep.
"""
import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

from harness import run_checks

BIG = 64 * 1024 * 1024 + 1024


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd, env=None, expect_ok=True):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if expect_ok and out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {cmd[-3:]} exited {out.returncode}: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    return out


# The tree each client sends up and brings back: files in folders, nested, with spaces and
# non-ASCII names, and a name that is a prefix of a folder's.
TREE = ["a.txt", "dir/b.txt", "dir/sub/c.txt", "dir/sub/with space.txt", "dir.txt", "z/ünï/d.txt"]
LONG = "long/" + "".join(f"folder-{i:02d}-" + "x" * 40 + "/" for i in range(22)) + "f.txt"
assert len(LONG) > 1100


def make_tree(root):
    for i, name in enumerate(TREE):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(f"{i} {name}\n".encode() * (i + 1))


def tree_files(root):
    out = {}
    for top, _, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            out[os.path.relpath(path, root)] = digest(path)
    return out


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


class Boto3:
    """boto3 with its default transfer manager (multipart above 8 MiB)."""

    def __init__(self, endpoint, ak, sk):
        import boto3
        from botocore.config import Config

        self.s3 = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
            region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, b):
        self.s3.create_bucket(Bucket=b)

    def put(self, b, k, path):
        self.s3.upload_file(path, b, k)

    def get(self, b, k, path):
        self.s3.download_file(b, k, path)

    def list(self, b):
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=b).get("Contents", [])]

    def presign(self, b, k):
        return self.s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": k}, ExpiresIn=300)

    def delete(self, b, k):
        self.s3.delete_object(Bucket=b, Key=k)

    def delete_bucket(self, b):
        self.s3.delete_bucket(Bucket=b)

    def tree_up(self, b, prefix, root):
        for name in TREE:
            self.s3.upload_file(os.path.join(root, name), b, prefix + name)

    def tree_list(self, b, prefix):
        """Every key under `prefix`, walking the folders with a delimiter as browsers do."""
        keys, folders = [], [prefix]
        while folders:
            folder = folders.pop()
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=b, Prefix=folder, Delimiter="/", PaginationConfig={"PageSize": 2}):
                keys += [o["Key"] for o in page.get("Contents", [])]
                folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return sorted(k[len(prefix):] for k in keys)

    def tree_down(self, b, prefix, root):
        for name in self.tree_list(b, prefix):
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.s3.download_file(b, prefix + name, path)

    def tree_remove(self, b, prefix):
        keys = [{"Key": prefix + k} for k in self.tree_list(b, prefix)]
        self.s3.delete_objects(Bucket=b, Delete={"Objects": keys})

    def hcp_error(self, b):
        """HCP's bucket names are letters, digits and hyphens only: a dotted name, valid at S3,
        is 400 InvalidBucketName."""
        from botocore.exceptions import ClientError

        try:
            self.s3.create_bucket(Bucket=b + ".dotted")
        except ClientError as e:
            return "InvalidBucketName", f'{e.response["ResponseMetadata"]["HTTPStatusCode"]} {e.response["Error"]["Code"]}'
        return "InvalidBucketName", "no error"


class AwsCli:
    """The aws cli v1 (`aws s3 cp` splits at 8 MiB)."""

    def __init__(self, endpoint, ak, sk):
        self.endpoint = endpoint
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID=ak, AWS_SECRET_ACCESS_KEY=sk, AWS_DEFAULT_REGION="us-east-1",
                        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        self.env.pop("AWS_CA_BUNDLE", None)

    def aws(self, *args, expect_ok=True):
        return run(["aws", "--endpoint-url", self.endpoint, *args], env=self.env, expect_ok=expect_ok)

    def create_bucket(self, b):
        self.aws("s3", "mb", f"s3://{b}")

    def put(self, b, k, path):
        self.aws("s3", "cp", "--only-show-errors", path, f"s3://{b}/{k}")

    def get(self, b, k, path):
        self.aws("s3", "cp", "--only-show-errors", f"s3://{b}/{k}", path)

    def list(self, b):
        return [line.split()[-1] for line in self.aws("s3", "ls", f"s3://{b}/").stdout.splitlines() if line.strip()]

    def presign(self, b, k):
        return self.aws("s3", "presign", f"s3://{b}/{k}", "--expires-in", "300").stdout.strip()

    def delete(self, b, k):
        self.aws("s3", "rm", f"s3://{b}/{k}")

    def delete_bucket(self, b):
        self.aws("s3", "rb", f"s3://{b}")

    def tree_up(self, b, prefix, root):
        self.aws("s3", "sync", "--only-show-errors", root, f"s3://{b}/{prefix}")

    def tree_list(self, b, prefix):
        out = self.aws("s3", "ls", "--recursive", f"s3://{b}/{prefix}", expect_ok=False)
        # `aws s3 ls` exits 1 when nothing is listed.
        if out.returncode not in (0, 1) or (out.returncode == 1 and (out.stdout + out.stderr).strip()):
            raise RuntimeError(f"aws s3 ls exited {out.returncode}: {out.stderr[-2000:]}")
        lines = out.stdout.splitlines()
        return sorted(line.split(None, 3)[3][len(prefix):] for line in lines if line.strip())

    def tree_down(self, b, prefix, root):
        self.aws("s3", "sync", "--only-show-errors", f"s3://{b}/{prefix}", root)
        # A second sync finds nothing to do: sizes and times agree.
        again = self.aws("s3", "sync", "--dryrun", f"s3://{b}/{prefix}", root).stdout
        if again.strip():
            raise AssertionError(f"a second sync would do: {again}")

    def tree_remove(self, b, prefix):
        self.aws("s3", "rm", "--recursive", "--only-show-errors", f"s3://{b}/{prefix}")

    def hcp_error(self, b):
        """Bucket policies are not HCP's: 501 NotImplemented."""
        out = self.aws("s3api", "put-bucket-policy", "--bucket", b, "--policy", '{"Version":"2012-10-17","Statement":[]}',
                       expect_ok=False)
        return "NotImplemented", out.stderr


class S3cmd:
    """s3cmd, with SigV2 or SigV4 (multipart in 15 MiB chunks by default; 8 MiB here)."""

    def __init__(self, endpoint, ak, sk, v2):
        host = endpoint.split("://", 1)[1]
        self.conf = tempfile.NamedTemporaryFile("w", suffix=".s3cfg", delete=False)
        self.conf.write(
            "[default]\n"
            f"access_key = {ak}\nsecret_key = {sk}\n"
            f"host_base = {host}\nhost_bucket = {host}\n"
            "use_https = False\nbucket_location = us-east-1\n"
            f"signature_v2 = {'True' if v2 else 'False'}\n"
            "multipart_chunk_size_mb = 8\n"
        )
        self.conf.close()

    def s3cmd(self, *args, expect_ok=True):
        return run(["s3cmd", "-c", self.conf.name, "--no-progress", *args], expect_ok=expect_ok)

    def create_bucket(self, b):
        self.s3cmd("mb", f"s3://{b}")

    def put(self, b, k, path):
        self.s3cmd("put", path, f"s3://{b}/{k}")

    def get(self, b, k, path):
        self.s3cmd("get", "--force", f"s3://{b}/{k}", path)

    def list(self, b):
        return [line.split()[-1].rsplit("/", 1)[-1] for line in self.s3cmd("ls", f"s3://{b}/").stdout.splitlines()
                if line.strip()]

    def presign(self, b, k):
        # s3cmd signs URLs the SigV2 way (Signature, Expires) whatever it signs requests with.
        return self.s3cmd("signurl", f"s3://{b}/{k}", "+300").stdout.strip()

    def delete(self, b, k):
        self.s3cmd("del", f"s3://{b}/{k}")

    def delete_bucket(self, b):
        self.s3cmd("rb", f"s3://{b}")

    def tree_up(self, b, prefix, root):
        self.s3cmd("sync", root + "/", f"s3://{b}/{prefix}")

    def tree_list(self, b, prefix):
        lines = self.s3cmd("ls", "--recursive", f"s3://{b}/{prefix}").stdout.splitlines()
        base = f"s3://{b}/{prefix}"
        return sorted(line[line.index(base) + len(base):] for line in lines if base in line)

    def tree_down(self, b, prefix, root):
        self.s3cmd("sync", f"s3://{b}/{prefix}", root + "/")
        # `rb --recursive` on a bucket of its own: everything in it goes, then the bucket.
        other = b + "-rb"
        self.s3cmd("mb", f"s3://{other}")
        self.s3cmd("sync", root + "/", f"s3://{other}/")
        self.s3cmd("rb", "--recursive", "--force", f"s3://{other}")
        out = self.s3cmd("ls", f"s3://{other}", expect_ok=False)
        if out.returncode == 0:
            raise AssertionError(f"{other} is still there: {out.stdout}")

    def tree_remove(self, b, prefix):
        self.s3cmd("del", "--recursive", "--force", f"s3://{b}/{prefix}")

    def hcp_error(self, b):
        """Bucket policies are not HCP's: 501 NotImplemented."""
        with tempfile.NamedTemporaryFile("w", suffix=".json") as policy:
            policy.write('{"Version":"2012-10-17","Statement":[]}')
            policy.flush()
            out = self.s3cmd("setpolicy", policy.name, f"s3://{b}", expect_ok=False)
        return "NotImplemented", out.stdout + out.stderr


class Rclone:
    """rclone (Debian's), multipart above a 16 MiB cutoff in 16 MiB chunks."""

    def __init__(self, endpoint, ak, sk):
        self.env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # breaks every remote
        self.env.update({
            "RCLONE_CONFIG": "/dev/null",
            "RCLONE_CONFIG_GW_TYPE": "s3",
            "RCLONE_CONFIG_GW_PROVIDER": "Other",
            "RCLONE_CONFIG_GW_ENDPOINT": endpoint,
            "RCLONE_CONFIG_GW_ACCESS_KEY_ID": ak,
            "RCLONE_CONFIG_GW_SECRET_ACCESS_KEY": sk,
            "RCLONE_CONFIG_GW_REGION": "us-east-1",
            "RCLONE_CONFIG_GW_FORCE_PATH_STYLE": "true",
        })

    def rclone(self, *args, expect_ok=True):
        return run(["rclone", "--retries", "1", "--low-level-retries", "1", "--s3-upload-cutoff", "16M",
                    "--s3-chunk-size", "16M", *args], env=self.env, expect_ok=expect_ok)

    def create_bucket(self, b):
        self.rclone("mkdir", f"gw:{b}")

    def put(self, b, k, path):
        self.rclone("copyto", path, f"gw:{b}/{k}")

    def get(self, b, k, path):
        self.rclone("copyto", f"gw:{b}/{k}", path)

    def list(self, b):
        return self.rclone("lsf", f"gw:{b}").stdout.split()

    def presign(self, b, k):
        return self.rclone("link", "--expire", "5m", f"gw:{b}/{k}").stdout.strip()

    def delete(self, b, k):
        self.rclone("deletefile", f"gw:{b}/{k}")

    def delete_bucket(self, b):
        self.rclone("rmdir", f"gw:{b}")

    def tree_up(self, b, prefix, root):
        self.rclone("sync", root, f"gw:{b}/{prefix}")
        self.rclone("check", root, f"gw:{b}/{prefix}")
        self.rclone("check", "--fast-list", root, f"gw:{b}/{prefix}")

    def tree_list(self, b, prefix):
        return sorted(self.rclone("lsf", "-R", "--files-only", f"gw:{b}/{prefix}").stdout.splitlines())

    def tree_down(self, b, prefix, root):
        # Planned from the listing alone (--fast-list): an empty or wrong listing would plan to
        # delete the local files, and the dry run says what it would delete.
        plan = self.rclone("sync", "--fast-list", "--dry-run", f"gw:{b}/{prefix}", root)
        if "Not deleting" in plan.stderr + plan.stdout or "Skipped delete" in plan.stderr + plan.stdout:
            raise AssertionError(f"sync would delete: {plan.stderr[-2000:]}")
        self.rclone("sync", f"gw:{b}/{prefix}", root)

    def tree_remove(self, b, prefix):
        self.rclone("purge", f"gw:{b}/{prefix}")

    def hcp_error(self, b):
        """A dotted bucket name is valid at S3 but not HCP's: 400 InvalidBucketName."""
        out = self.rclone("mkdir", f"gw:{b}.dotted", expect_ok=False)
        return "InvalidBucketName", out.stdout + out.stderr


class MinioPy:
    """minio-py (multipart in 16 MiB parts here), its listing and server-side copy."""

    def __init__(self, endpoint, ak, sk):
        from minio import Minio

        host = endpoint.split("://", 1)[1]
        self.mc = Minio(host, access_key=ak, secret_key=sk, secure=False, region="us-east-1")

    def create_bucket(self, b):
        self.mc.make_bucket(b)

    def put(self, b, k, path):
        self.mc.fput_object(b, k, path, part_size=16 * 1024 * 1024)

    def get(self, b, k, path):
        self.mc.fget_object(b, k, path)

    def list(self, b):
        return [o.object_name for o in self.mc.list_objects(b)]

    def presign(self, b, k):
        from datetime import timedelta

        return self.mc.presigned_get_object(b, k, expires=timedelta(minutes=5))

    def delete(self, b, k):
        self.mc.remove_object(b, k)

    def delete_bucket(self, b):
        self.mc.remove_bucket(b)

    def tree_up(self, b, prefix, root):
        # Sent under a staging prefix, then copied into place server-side.
        for name in TREE:
            self.mc.fput_object(b, "staging/" + name, os.path.join(root, name))
        from minio.commonconfig import CopySource

        for name in TREE:
            self.mc.copy_object(b, prefix + name, CopySource(b, "staging/" + name))
            self.mc.remove_object(b, "staging/" + name)

    def tree_list(self, b, prefix):
        return sorted(o.object_name[len(prefix):] for o in self.mc.list_objects(b, prefix=prefix, recursive=True))

    def tree_down(self, b, prefix, root):
        for name in self.tree_list(b, prefix):
            self.mc.fget_object(b, prefix + name, os.path.join(root, name))
        # One level at a time, as a browser lists: folders come back as prefixes.
        top = sorted(o.object_name for o in self.mc.list_objects(b, prefix=prefix))
        first = sorted({n.split("/")[0] + ("/" if "/" in n else "") for n in TREE})
        if top != [prefix + n for n in first]:
            raise AssertionError(top)

    def tree_remove(self, b, prefix):
        from minio.deleteobjects import DeleteObject

        errors = list(self.mc.remove_objects(b, [DeleteObject(prefix + n) for n in self.tree_list(b, prefix)]))
        if errors:
            raise AssertionError(errors)

    def hcp_error(self, b):
        """A dotted bucket name is valid at S3 but not HCP's: 400 InvalidBucketName."""
        from minio.error import S3Error

        try:
            self.mc.make_bucket(b + ".dotted")
        except S3Error as e:
            return "InvalidBucketName", f"{e.code}"
        except ValueError as e:  # minio-py checks names itself first
            return "InvalidBucketName", f"InvalidBucketName (refused by the client: {e})"
        return "InvalidBucketName", "no error"


def main():
    client_name, endpoint, ak, sk, bucket = sys.argv[1:6]
    if sys.argv[6:] == ["long-keys"]:
        TREE.append(LONG)
    client = {
        "boto3": lambda: Boto3(endpoint, ak, sk),
        "awscli": lambda: AwsCli(endpoint, ak, sk),
        "s3cmd-v2": lambda: S3cmd(endpoint, ak, sk, v2=True),
        "s3cmd-v4": lambda: S3cmd(endpoint, ak, sk, v2=False),
        "rclone": lambda: Rclone(endpoint, ak, sk),
        "minio": lambda: MinioPy(endpoint, ak, sk),
    }[client_name]()
    work = tempfile.mkdtemp()
    # 128 MiB a run: gone when the script ends, whichever way it ends.
    atexit.register(shutil.rmtree, work, True)
    small, big = os.path.join(work, "small.txt"), os.path.join(work, "big.bin")
    with open(small, "wb") as f:
        f.write(b"hello from " + client_name.encode())
    with open(big, "wb") as f:
        f.write(os.urandom(BIG))

    def roundtrip(key, path):
        back = os.path.join(work, "back-" + key)
        client.get(bucket, key, back)
        if digest(back) != digest(path):
            raise AssertionError(f"{key}: {os.path.getsize(back)} bytes back, not the {os.path.getsize(path)} sent")

    def listed():
        names = sorted(client.list(bucket))
        if names != ["big.bin", "small.txt"]:
            raise AssertionError(names)

    def presigned():
        url = client.presign(bucket, "small.txt")
        if fetch(url) != open(small, "rb").read():
            raise AssertionError(url)

    def hcp_error():
        code, output = client.hcp_error(bucket)
        if code not in output:
            raise AssertionError(f"expected {code}, client said: {output[-1500:]}")

    def deleted():
        client.delete(bucket, "small.txt")
        client.delete(bucket, "big.bin")
        client.delete_bucket(bucket)
        try:
            fetch(client_presigned_after_delete)
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        else:
            raise AssertionError("object still readable after delete")

    def tree():
        up, down = os.path.join(work, "tree-up"), os.path.join(work, "tree-down")
        make_tree(up)
        os.makedirs(down)
        client.tree_up(bucket, "tree/", up)
        listed = client.tree_list(bucket, "tree/")
        if listed != sorted(TREE):
            raise AssertionError(f"listed {listed}")
        client.tree_down(bucket, "tree/", down)
        if tree_files(down) != tree_files(up):
            raise AssertionError(f"back: {sorted(tree_files(down))}")
        client.tree_remove(bucket, "tree/")
        if client.tree_list(bucket, "tree/"):
            raise AssertionError("the tree is still listed")

    client_presigned_after_delete = None

    def presign_for_delete():
        nonlocal client_presigned_after_delete
        client_presigned_after_delete = client.presign(bucket, "small.txt")

    run_checks([
        ("create-bucket", lambda: client.create_bucket(bucket)),
        ("put-small", lambda: client.put(bucket, "small.txt", small)),
        ("put-multipart", lambda: client.put(bucket, "big.bin", big)),
        ("get-small", lambda: roundtrip("small.txt", small)),
        ("get-multipart", lambda: roundtrip("big.bin", big)),
        ("list", listed),
        ("presigned-get", presigned),
        ("hcp-error", hcp_error),
        ("tree", tree),
        ("presign-again", presign_for_delete),
        ("delete", deleted),
    ])


if __name__ == "__main__":
    main()
