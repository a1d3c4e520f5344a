// The BlobStore and HostedIndex contract suites against a real Ceph RADOS Gateway on loopback: one
// cluster for the file, a fresh key prefix (an empty store) per test, and a second store on the same
// prefix with its own scratch dir as "another replica".
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { S3Bucket } from '../../src/store/s3-bucket.ts';
import { MultipartLedger } from '../../src/store/s3-multipart.ts';
import { S3BlobStore } from '../../src/store/s3-blob-store.ts';
import { S3HostedIndex } from '../../src/store/s3-hosted-index.ts';
import { startCeph, type RunningCeph } from '../support/ceph.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { describeBlobStore, readAll, sha256 } from './blob-store.contract.ts';
import { describeHostedIndex } from './hosted-index.contract.ts';

let ceph: RunningCeph;
beforeAll(async () => {
  ceph = await startCeph();
}, 90_000);
afterAll(async () => {
  await ceph?.dispose();
});

function bucketOptions(prefix: string) {
  return { endpoint: ceph.endpoint, region: ceph.region, bucket: ceph.bucket, prefix, forcePathStyle: true, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey };
}

async function openStore(prefix: string, dir: string): Promise<S3BlobStore> {
  const store = new S3BlobStore({ ...bucketOptions(prefix), scratchDir: join(dir, randomBytes(4).toString('hex')) });
  await store.init({ staleUploadsMs: 24 * 3_600_000 });
  return store;
}

describeBlobStore('S3BlobStore (Ceph RGW)', async () => {
  const dir = await makeTempDir('s3-blob-store');
  const prefix = `t-${randomBytes(6).toString('hex')}/`;
  const stores = [await openStore(prefix, dir)];
  return {
    store: stores[0]!,
    another: async () => {
      const store = await openStore(prefix, dir);
      stores.push(store);
      return store;
    },
    cleanup: async () => {
      for (const store of stores) store.close();
      await removeTempDir(dir);
    },
  };
});

describeHostedIndex('S3HostedIndex (Ceph RGW)', async () => {
  const prefix = `t-${randomBytes(6).toString('hex')}/`;
  const buckets = [new S3Bucket(bucketOptions(prefix))];
  return {
    index: new S3HostedIndex(buckets[0]!),
    openReplica: async () => {
      const bucket = new S3Bucket(bucketOptions(prefix));
      buckets.push(bucket);
      return new S3HostedIndex(bucket);
    },
    cleanup: async () => {
      for (const bucket of buckets) bucket.close();
    },
  };
});

describe('S3BlobStore in the bucket', () => {
  it('a large upload is a multipart upload until commit, and none is left after commit or abort', async () => {
    const dir = await makeTempDir('s3-multipart');
    const prefix = `t-${randomBytes(6).toString('hex')}/`;
    const store = await openStore(prefix, dir);
    try {
      const bytes = randomBytes(20 * 1024 * 1024 + 5);
      const upload = await store.begin(sha256(bytes));
      await upload.write(bytes.subarray(0, 17 * 1024 * 1024));
      expect((await ceph.listMultipartUploads(prefix)).length).toBe(1);
      expect(await ceph.listKeys(`${prefix}blobs/`)).toEqual([]);
      await upload.write(bytes.subarray(17 * 1024 * 1024));
      await upload.commit();
      await upload.abort();
      expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
      expect((await readAll(await store.open(sha256(bytes)))).equals(bytes)).toBe(true);

      const wrong = await store.begin(sha256(Buffer.from('other')));
      await wrong.write(bytes);
      await expect(wrong.commit()).rejects.toMatchObject({ name: 'DigestMismatchError' });
      expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
      expect(await ceph.listKeys(`${prefix}blobs/`)).toEqual([`${prefix}blobs/sha256/${sha256(bytes).slice(7)}`]);
    } finally {
      store.close();
      await removeTempDir(dir);
    }
  });

  it('a crash between creating an upload and writing its id down: the next start finds it by its key', async () => {
    const dir = await makeTempDir('s3-restart-intent');
    const prefix = `t-${randomBytes(6).toString('hex')}/`;
    const scratchDir = join(dir, 'scratch');
    const bucket = new S3Bucket(bucketOptions(prefix));
    try {
      // What the crashed run did: wrote down the key, and the gateway created the upload; then it died.
      const crashed = bucket.key('blobs/crashed');
      await new MultipartLedger(join(scratchDir, 'multipart')).intend(crashed);
      await bucket.client.send(new CreateMultipartUploadCommand({ Bucket: ceph.bucket, Key: crashed }));
      // Another replica's upload under the same prefix, just begun: not this replica's to abort.
      const other = bucket.key('blobs/other');
      await bucket.client.send(new CreateMultipartUploadCommand({ Bucket: ceph.bucket, Key: other }));
      const restarted = new S3BlobStore({ ...bucketOptions(prefix), scratchDir });
      expect(await restarted.init({ staleUploadsMs: 24 * 3_600_000 })).toBe(1);
      expect((await ceph.listMultipartUploads(prefix)).map((u) => u.key)).toEqual([other]);
      restarted.close();
    } finally {
      bucket.close();
      await removeTempDir(dir);
    }
  });

  it('a restart on the same scratch dir aborts the multipart uploads its crashed run left', async () => {
    const dir = await makeTempDir('s3-restart');
    const prefix = `t-${randomBytes(6).toString('hex')}/`;
    const scratchDir = join(dir, 'scratch');
    const store = new S3BlobStore({ ...bucketOptions(prefix), scratchDir });
    await store.init({ staleUploadsMs: 24 * 3_600_000 });
    try {
      const bytes = randomBytes(9 * 1024 * 1024);
      const upload = await store.begin(sha256(bytes));
      await upload.write(bytes);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await ceph.listMultipartUploads(prefix)).length).toBe(1);
      // The process "dies" here: no abort. The next start on the same scratch dir:
      const restarted = new S3BlobStore({ ...bucketOptions(prefix), scratchDir });
      expect(await restarted.init({ staleUploadsMs: 24 * 3_600_000 })).toBe(1);
      expect(await ceph.listMultipartUploads(prefix)).toEqual([]);
      expect(await restarted.stat(sha256(bytes))).toBeUndefined();
      restarted.close();
    } finally {
      store.close();
      await removeTempDir(dir);
    }
  });
});
