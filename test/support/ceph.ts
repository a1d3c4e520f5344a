// A throwaway one-node Ceph cluster with a RADOS Gateway on loopback: the real S3 server the S3 storage
// tests run against. One monitor, one OSD on memstore (nothing on disk but config and keyrings), no
// manager (the gateway does not need one), radosgw's beast frontend on a free port, one user, one bucket.
//
// What makes it start in seconds rather than tens of seconds or hang (see issue 15):
// - each daemon has its own keyring (one shared `keyring` in [global] makes the OSD log in as admin and hang);
// - msgr v1 only, IPv4 only, with the monitor map naming the v1 address (else clients try v2 first);
// - the gateway's pools are made up front in one `ceph` session (else radosgw makes them one by one);
// - paxos_propose_interval 0.1, so each map change commits at once;
// - osd_client_watch_timeout 5: a gateway that died leaves its watches behind, and radosgw-admin's notifies
//   wait for them (30 s by default) before the next gateway's user can be made.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { requireBinary } from './binaries.ts';
import { runCommand } from './command.ts';
import { portOutsideEphemeralRange } from './ports.ts';
import { startProcess, type ManagedProcess } from './process.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface RunningCeph {
  /** http://127.0.0.1:PORT, the gateway. */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** A bucket made at start. */
  readonly bucket: string;
  /** A client of the gateway as the test user (path style, checksums only when required). */
  readonly s3: S3Client;
  /** Makes another bucket and returns its name. */
  createBucket(name?: string): Promise<string>;
  /** Keys under `prefix` in `bucket` (default: the start bucket). */
  listKeys(prefix?: string, bucket?: string): Promise<string[]>;
  /** Multipart uploads begun and neither completed nor aborted. */
  listMultipartUploads(prefix?: string, bucket?: string): Promise<{ key: string; uploadId: string }[]>;
  /** Aborts every unfinished multipart upload (between tests). */
  abortMultipartUploads(bucket?: string): Promise<void>;
  /** Daemon logs, for failure messages. */
  output(): string;
  dispose(): Promise<void>;
}

const GATEWAY_POOLS = [
  '.rgw.root',
  'default.rgw.control',
  'default.rgw.meta',
  'default.rgw.log',
  'default.rgw.buckets.index',
  'default.rgw.buckets.data',
  'default.rgw.buckets.non-ec',
];

export async function startCeph(): Promise<RunningCeph> {
  const binaries = {
    mon: requireBinary('ceph-mon', 'ceph-mon'),
    osd: requireBinary('ceph-osd', 'ceph-osd'),
    gateway: requireBinary('radosgw', 'radosgw'),
    ceph: requireBinary('ceph', 'ceph-common'),
    authtool: requireBinary('ceph-authtool', 'ceph-common'),
    monmaptool: requireBinary('monmaptool', 'ceph-common'),
    admin: requireBinary('radosgw-admin', 'radosgw'),
  };
  const dir = await makeTempDir('ceph');
  const daemons: ManagedProcess[] = [];
  const stopAll = async () => {
    // The gateway first (it holds connections to the OSD), the monitor last.
    for (const daemon of [...daemons].reverse()) await daemon.stop(3_000);
  };
  try {
    // The monitor's port and the gateway's (startGateway) lie below the ephemeral range: each daemon binds its
    // port a while after it is chosen, and CI once saw an outgoing connection take the gateway's ephemeral one
    // in between (radosgw: "failed to bind ... Address already in use").
    const monPort = await portOutsideEphemeralRange();
    const conf = join(dir, 'ceph.conf');
    const fsid = randomUUID();
    for (const sub of ['mon', 'osd', 'run', 'rgw']) await mkdir(join(dir, sub));
    await writeFile(conf, cephConf(dir, fsid, monPort));
    const env = { PATH: process.env.PATH, CEPH_CONF: conf, HOME: dir };
    const run = (command: string, args: string[]) => runCommand(command, ['-c', conf, ...args], { env, timeoutMs: 30_000 });

    const keyrings: [string, string, string[]][] = [
      ['mon', 'mon.', ['mon', 'allow *']],
      ['admin', 'client.admin', ['mon', 'allow *', 'osd', 'allow *', 'mgr', 'allow *']],
      ['osd', 'osd.0', ['mon', 'allow profile osd', 'mgr', 'allow profile osd', 'osd', 'allow *']],
      ['rgw', 'client.rgw.a', ['mon', 'allow rw', 'osd', 'allow rwx']],
    ];
    for (const [file, name, caps] of keyrings) {
      const capArgs: string[] = [];
      for (let i = 0; i < caps.length; i += 2) capArgs.push('--cap', caps[i]!, caps[i + 1]!);
      await runCommand(binaries.authtool, ['-C', join(dir, `${file}.keyring`), '-g', '-n', name, ...capArgs], { env });
      if (file !== 'mon') await runCommand(binaries.authtool, [join(dir, 'mon.keyring'), '--import-keyring', join(dir, `${file}.keyring`)], { env });
    }
    await runCommand(binaries.monmaptool, ['--create', '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, '--fsid', fsid, join(dir, 'monmap')], { env });
    await run(binaries.mon, ['--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'mon.keyring')]);
    const mon = startProcess({ command: binaries.mon, args: ['-c', conf, '-f', '-i', 'a'], name: 'ceph-mon', cwd: dir, env });
    daemons.push(mon);
    await mon.waitReady({ tcp: { port: monPort } }, 20_000);

    const osdId = randomUUID();
    await run(binaries.ceph, ['--connect-timeout', '20', 'osd', 'new', osdId, '0']);
    await run(binaries.osd, ['-i', '0', '--mkfs', '--osd-uuid', osdId]);
    daemons.push(startProcess({ command: binaries.osd, args: ['-c', conf, '-f', '-i', '0'], name: 'ceph-osd', cwd: dir, env }));
    const poolCommands = GATEWAY_POOLS.flatMap((pool) => [`osd pool create ${pool} 8 8`, `osd pool application enable ${pool} rgw`]);
    await withInput(binaries.ceph, ['-c', conf, '--connect-timeout', '20'], `${poolCommands.join('\n')}\n`, env);

    const { gateway, endpoint } = await startGateway(binaries.gateway, conf, dir, env);
    daemons.push(gateway);
    const accessKeyId = `AK${randomBytes(8).toString('hex').toUpperCase()}`;
    const secretAccessKey = randomBytes(20).toString('hex');
    await run(binaries.admin, ['user', 'create', '--uid', 'ocimirror', '--display-name', 'ocimirror tests', '--access-key', accessKeyId, '--secret-key', secretAccessKey]);

    const region = 'us-east-1';
    const s3 = new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const createBucket = async (name = `test-${randomBytes(6).toString('hex')}`) => {
      await s3.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    };
    const bucket = await createBucket('ocimirror');
    const listMultipartUploads = async (prefix = '', name = bucket) => {
      const answer = await s3.send(new ListMultipartUploadsCommand({ Bucket: name, Prefix: prefix }));
      return (answer.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
    };
    return {
      endpoint,
      region,
      accessKeyId,
      secretAccessKey,
      bucket,
      s3,
      createBucket,
      listKeys: async (prefix = '', name = bucket) => {
        const keys: string[] = [];
        let token: string | undefined;
        do {
          const page = await s3.send(new ListObjectsV2Command({ Bucket: name, Prefix: prefix, ContinuationToken: token }));
          for (const object of page.Contents ?? []) keys.push(object.Key!);
          token = page.NextContinuationToken;
        } while (token);
        return keys.sort();
      },
      listMultipartUploads,
      abortMultipartUploads: async (name = bucket) => {
        for (const upload of await listMultipartUploads('', name)) {
          await s3.send(new AbortMultipartUploadCommand({ Bucket: name, Key: upload.key, UploadId: upload.uploadId }));
        }
      },
      output: () => daemons.map((d) => `--- ${d.name}\n${d.output().slice(-4_000)}`).join('\n'),
      dispose: async () => {
        s3.destroy();
        await stopAll();
        await removeTempDir(dir);
      },
    };
  } catch (err) {
    const logs = daemons.map((d) => `--- ${d.name}\n${d.output().slice(-3_000)}`).join('\n');
    await stopAll();
    await removeTempDir(dir);
    throw new Error(`Ceph did not start: ${(err as Error).message}\n${logs}`, { cause: err });
  }
}

/**
 * Starts radosgw on a free port below the ephemeral range and waits until it answers HTTP. A gateway that exits first (its port taken
 * by another process after all) is started again on another port, up to three times.
 */
async function startGateway(
  command: string,
  conf: string,
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ gateway: ManagedProcess; endpoint: string }> {
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await portOutsideEphemeralRange();
    const gateway = startProcess({
      command,
      args: ['-c', conf, '-f', '-n', 'client.rgw.a', '--rgw_frontends', `beast endpoint=127.0.0.1:${port}`],
      name: 'radosgw',
      cwd: dir,
      env,
    });
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      await gateway.waitReady({ http: { url: `${endpoint}/`, status: (s) => s > 0 } }, 30_000);
      return { gateway, endpoint };
    } catch (err) {
      await gateway.stop(3_000);
      failures.push((err as Error).message);
      if (!/Address already in use/.test(gateway.output())) break;
    }
  }
  throw new Error(`radosgw did not start:\n${failures.join('\n')}`);
}

function cephConf(dir: string, fsid: string, monPort: number): string {
  return `[global]
fsid = ${fsid}
mon_host = [v1:127.0.0.1:${monPort}]
ms_bind_msgr2 = false
ms_bind_ipv6 = false
ms_bind_ipv4 = true
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
public_network = 127.0.0.0/8
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
run_dir = ${dir}/run
admin_socket = ${dir}/run/$name.asok
log_file = ${dir}/$name.log
log_to_stderr = false
err_to_stderr = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
paxos_propose_interval = 0.1
osd_client_watch_timeout = 5
mon_data_avail_warn = 1
mon_data_avail_crit = 0
[mon.a]
mon_data = ${dir}/mon
keyring = ${dir}/mon.keyring
[osd.0]
osd_data = ${dir}/osd
keyring = ${dir}/osd.keyring
osd_objectstore = memstore
memstore_device_bytes = 4294967296
[client.admin]
keyring = ${dir}/admin.keyring
[client.rgw.a]
keyring = ${dir}/rgw.keyring
rgw_data = ${dir}/rgw
rgw_multipart_min_part_size = 5242880
`;
}

/** Runs `command` with `input` on stdin (one `ceph` session for many commands: one connect, not many). */
function withInput(command: string, args: string[], input: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.slice(-2_000)}`));
    });
    child.stdin.end(input);
  });
}
