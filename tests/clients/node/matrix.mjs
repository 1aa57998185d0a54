// The client matrix for the AWS SDK for JavaScript v3 (@aws-sdk/client-s3), the same scenario
// as ../matrix.py: create bucket, small and 64 MiB + 1 KiB multipart objects back
// byte-identical, list, presigned GET and PUT, a presigned copy refused, one HCP error by its
// code, delete.
// Prints `ok NAME` / `FAIL NAME: reason` per check, exits 1 if any failed.
//   node matrix.mjs ENDPOINT ACCESS_KEY SECRET_KEY BUCKET
import { createHash, randomBytes } from "node:crypto";
import {
  S3Client,
  CreateBucketCommand,
  PutObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteBucketCommand,
  CopyObjectCommand,
  HeadObjectCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const [endpoint, accessKeyId, secretAccessKey, bucket] = process.argv.slice(2);
const s3 = new S3Client({
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: { accessKeyId, secretAccessKey },
  maxAttempts: 1,
});

const PART = 8 * 1024 * 1024;
const big = randomBytes(64 * 1024 * 1024 + 1024);
const small = Buffer.from("hello from node");
const sha = (b) => createHash("sha256").update(b).digest("hex");

async function bodyOf(key) {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body.transformToByteArray());
}

async function putMultipart() {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "big.bin" }));
  const parts = [];
  for (let i = 0, n = 1; i < big.length; i += PART, n++) {
    const { ETag } = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: "big.bin", UploadId, PartNumber: n, Body: big.subarray(i, i + PART) }),
    );
    parts.push({ ETag, PartNumber: n });
  }
  await s3.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "big.bin", UploadId, MultipartUpload: { Parts: parts } }),
  );
}

function expectEqual(what, got, want) {
  if (got !== want) throw new Error(`${what}: ${got} != ${want}`);
}

const checks = [
  ["create-bucket", () => s3.send(new CreateBucketCommand({ Bucket: bucket }))],
  ["put-small", () => s3.send(new PutObjectCommand({ Bucket: bucket, Key: "small.txt", Body: small }))],
  ["put-multipart", putMultipart],
  ["get-small", async () => expectEqual("small", sha(await bodyOf("small.txt")), sha(small))],
  ["get-multipart", async () => expectEqual("big", sha(await bodyOf("big.bin")), sha(big))],
  [
    "list",
    async () => {
      const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      expectEqual("keys", (out.Contents ?? []).map((o) => o.Key).sort().join(","), "big.bin,small.txt");
    },
  ],
  [
    "presigned-get",
    async () => {
      const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: "small.txt" }), { expiresIn: 300 });
      const r = await fetch(url);
      expectEqual("status", r.status, 200);
      expectEqual("body", Buffer.from(await r.arrayBuffer()).toString(), small.toString());
    },
  ],
  [
    // A presigned PUT (the SDK signs its checksum settings into the query) stores its body.
    "presigned-put",
    async () => {
      const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: "put.txt" }), { expiresIn: 300 });
      const r = await fetch(url, { method: "PUT", body: small });
      expectEqual("status", r.status, 200);
      expectEqual("put", sha(await bodyOf("put.txt")), sha(small));
    },
  ],
  [
    // The SDK signs a presigned copy's x-amz-copy-source into the query, which S3 reads as the
    // header and HCP would ignore (an empty object stored): refused, nothing stored.
    "presigned-copy-refused",
    async () => {
      const copy = new CopyObjectCommand({ Bucket: bucket, Key: "copied.txt", CopySource: `${bucket}/small.txt` });
      const url = await getSignedUrl(s3, copy, { expiresIn: 300 });
      if (!url.includes("x-amz-copy-source=")) throw new Error(`not in the query: ${url}`);
      const r = await fetch(url, { method: "PUT" });
      expectEqual("status", r.status, 400);
      expectEqual("code", /<Code>InvalidArgument<\/Code>/.test(await r.text()), true);
      try {
        await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "copied.txt" }));
      } catch (e) {
        expectEqual("head", e.$metadata.httpStatusCode, 404);
        return;
      }
      throw new Error("copied.txt was stored");
    },
  ],
  [
    // HCP allows two kilobytes of user metadata: more is 400 MetadataTooLarge.
    "hcp-error",
    async () => {
      try {
        await s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: "meta.txt", Body: small, Metadata: { big: "m".repeat(2100) } }),
        );
      } catch (e) {
        expectEqual("code", e.name, "MetadataTooLarge");
        expectEqual("status", e.$metadata.httpStatusCode, 400);
        return;
      }
      throw new Error("no error");
    },
  ],
  [
    "delete",
    async () => {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "small.txt" }));
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "big.bin" }));
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "put.txt" }));
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
  ],
];

let failures = 0;
for (const [name, check] of checks) {
  try {
    await check();
    console.log(`ok ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e?.name ?? ""} ${e?.message ?? e}`);
  }
}
process.exit(failures ? 1 : 0);
