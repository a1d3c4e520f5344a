// storage.s3: blobs, manifests and the hosted index in an S3-compatible bucket instead of the data dir.
// The schema fragment and its resolution (keys read from the file, the environment or a file, as Secrets).
import { z } from 'zod';
import { readSecret, type Secret } from './secret.ts';
import { parseDurationMs } from './units.ts';

export interface S3StorageConfig {
  /** The S3 API's origin (Ceph RGW, MinIO, Garage...); undefined: AWS's own endpoint for the region. */
  readonly endpoint?: string;
  readonly bucket: string;
  readonly region: string;
  /** Put before every key: "" (the bucket's root) or a path ending in "/". */
  readonly prefix: string;
  readonly forcePathStyle: boolean;
  /** Both or neither; neither: the AWS SDK's own chain (AWS_ACCESS_KEY_ID, a web identity, an instance role). */
  readonly credentials?: { readonly accessKeyId: Secret; readonly secretAccessKey: Secret };
  /** Cached and hosted blob GETs answered with a 307 to a presigned URL at the bucket. */
  readonly redirect: boolean;
  /** How long such a presigned URL is valid. */
  readonly redirectTtlMs: number;
  /** This replica's base URL as its peers reach it, for following its downloads in progress. */
  readonly peerUrl?: string;
}

const httpUrl = (what: string) =>
  z
    .string()
    .refine((u) => URL.canParse(u) && /^https?:\/\//i.test(u), `must be an http:// or https:// URL (${what})`)
    .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), 'must not carry a user name or password')
    .transform((u) => u.replace(/\/+$/, ''));

const redirectTtl = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDurationMs(value);
  // A presigned URL is valid for at most 7 days (SigV4); a second at least, for the client to follow it.
  if (ms === undefined || ms < 1_000 || ms > 7 * 86_400_000) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration between 1s and 7d (use e.g. 5m)` });
    return z.NEVER;
  }
  return ms;
});

export const s3StorageSchema = z
  .object({
    endpoint: httpUrl('e.g. http://rgw.lab:7480').optional(),
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'is not a bucket name (3-63 lower-case letters, digits, . and -)'),
    region: z.string().min(1).default('us-east-1'),
    prefix: z
      .string()
      .default('')
      .refine((p) => !p.split('/').some((part) => part === '.' || part === '..'), 'must not contain . or .. components')
      .transform((p) => p.replace(/^\/+|\/+$/g, ''))
      .transform((p) => (p ? `${p}/` : '')),
    /** Default: path style when an endpoint is given (most S3-compatible servers), virtual-hosted on AWS. */
    forcePathStyle: z.boolean().optional(),
    accessKeyId: z.string().min(1).optional(),
    accessKeyIdEnv: z.string().min(1).optional(),
    accessKeyIdFile: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    secretAccessKeyEnv: z.string().min(1).optional(),
    secretAccessKeyFile: z.string().min(1).optional(),
    redirect: z.boolean().default(false),
    redirectTtl: redirectTtl.default(300_000),
    peerUrl: httpUrl('this replica as its peers reach it, e.g. http://10.0.0.7:5000').optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const ids = [s.accessKeyId, s.accessKeyIdEnv, s.accessKeyIdFile].filter((v) => v !== undefined).length;
    const keys = [s.secretAccessKey, s.secretAccessKeyEnv, s.secretAccessKeyFile].filter((v) => v !== undefined).length;
    if (ids > 1) ctx.addIssue({ code: 'custom', message: 'give only one of accessKeyId, accessKeyIdEnv, accessKeyIdFile' });
    if (keys > 1) ctx.addIssue({ code: 'custom', message: 'give only one of secretAccessKey, secretAccessKeyEnv, secretAccessKeyFile' });
    if ((ids > 0) !== (keys > 0)) ctx.addIssue({ code: 'custom', message: 'give an access key id and a secret access key together, or neither (then the AWS SDK\'s own credential chain applies)' });
  });

export const storageSchema = z.object({ s3: s3StorageSchema.optional() }).strict();

type S3Input = z.output<typeof s3StorageSchema>;

export function resolveS3Storage(s: S3Input, env: NodeJS.ProcessEnv, cwd: string, problems: string[]): S3StorageConfig {
  const where = 'storage.s3';
  const accessKeyId = readSecret({ inline: s.accessKeyId, env: s.accessKeyIdEnv, file: s.accessKeyIdFile }, env, cwd, `${where}.accessKeyId`, problems);
  const secretAccessKey = readSecret({ inline: s.secretAccessKey, env: s.secretAccessKeyEnv, file: s.secretAccessKeyFile }, env, cwd, `${where}.secretAccessKey`, problems);
  return {
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    bucket: s.bucket,
    region: s.region,
    prefix: s.prefix,
    forcePathStyle: s.forcePathStyle ?? s.endpoint !== undefined,
    ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
    redirect: s.redirect,
    redirectTtlMs: s.redirectTtl,
    ...(s.peerUrl ? { peerUrl: s.peerUrl } : {}),
  };
}
