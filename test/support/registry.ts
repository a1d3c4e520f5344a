import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch as undiciFetch } from 'undici';
import { requireBinary } from './binaries.ts';
import { htpasswdLine } from './htpasswd.ts';
import { freePort } from './ports.ts';
import { startProcess, type ManagedProcess } from './process.ts';
import { registryConfig, type RegistryAuth, type RegistryProxy } from './registry-config.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export type { RegistryAuth, RegistryProxy } from './registry-config.ts';

export interface RegistryOptions {
  auth?: RegistryAuth;
  /** Pull-through cache mode of `remoteUrl` (pushes are refused in this mode). */
  proxy?: RegistryProxy;
  /** Blob GETs redirect (307) to this base URL + the blob's storage path, like a CDN (see cdn.ts). */
  blobRedirectBaseUrl?: string;
  /** Default: a free port. */
  port?: number;
  /** Default: a new temp dir, deleted by dispose(). */
  dataDir?: string;
  /** Serve HTTPS with this certificate (PEM); url is then https://. Pushes need a plain registry on the same dataDir. */
  tls?: { cert: string; key: string };
}

export interface RegistryRequest {
  method: string;
  /** The request path without its query string. */
  path: string;
  status: number;
}

export interface RunningRegistry {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, for docker:// references */
  host: string;
  port: number;
  dataDir: string;
  /**
   * Requests answered so far (across restarts), from the registry's access
   * log. A log line can arrive a few ms after its response: call settle() first
   * when asserting on requests that just finished.
   */
  requests(): RegistryRequest[];
  /** Waits until every request answered before this call is in requests(). */
  settle(): Promise<void>;
  /** Forgets the requests seen so far. */
  clearRequests(): void;
  /** Everything the registry printed, across restarts. */
  output(): string;
  /** The pid of the running docker-registry process (a new one after start()). */
  pid(): number;
  /** Stops the process; data stays for start(). */
  stop(): Promise<void>;
  /** Starts again on the same port with the same data and configuration. */
  start(): Promise<void>;
  /** stop() and delete the temp dirs this helper created. */
  dispose(): Promise<void>;
}

const SUPPORT_MARK = 'ocimirror-test-support=';
// Apache combined log format, which docker-registry prints to stdout for every
// request (its JSON "response completed" lines skip requests refused by auth):
// 127.0.0.1 - - [23/Nov/2026:16:46:05 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "([A-Z]+) (\S+) [^"]*" (\d{3}) /gm;

/** Runs the real `docker-registry serve` on 127.0.0.1, ready when GET /v2/ answers 200 or 401. */
export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const binary = requireBinary('docker-registry', 'docker-registry');
  const workDir = await makeTempDir('registry');
  const dataDir = options.dataDir ?? join(workDir, 'data');
  await mkdir(dataDir, { recursive: true });
  const configPath = join(workDir, 'config.yml');
  let htpasswdPath: string | undefined;
  if (options.auth?.kind === 'htpasswd') {
    htpasswdPath = join(workDir, 'htpasswd');
    await writeFile(htpasswdPath, `${await htpasswdLine(options.auth.username, options.auth.password)}\n`);
  }

  let tlsFiles: { certificate: string; key: string } | undefined;
  if (options.tls) {
    tlsFiles = { certificate: join(workDir, 'server.crt'), key: join(workDir, 'server.key') };
    await writeFile(tlsFiles.certificate, options.tls.cert);
    await writeFile(tlsFiles.key, options.tls.key);
  }

  const httpSecret = randomBytes(16).toString('hex');
  const runs: ManagedProcess[] = [];
  let cleared = 0;
  const launch = async (port: number): Promise<void> => {
    const config = registryConfig({ port, httpSecret, dataDir, htpasswdPath, auth: options.auth, proxy: options.proxy, blobRedirectBaseUrl: options.blobRedirectBaseUrl, tls: tlsFiles });
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const run = startProcess({
      command: binary,
      args: ['serve', configPath],
      name: `docker-registry :${port}`,
      cwd: workDir,
      // Only PATH: REGISTRY_* variables from the host would override the config.
      env: { PATH: process.env.PATH },
    });
    runs.push(run);
    try {
      // The marker keeps readiness probes out of requests().
      const probe = `http://127.0.0.1:${port}/v2/?${SUPPORT_MARK}ready`;
      await run.waitReady(tlsFiles ? { tcp: { port } } : { http: { url: probe, status: (s) => s === 200 || s === 401 } });
    } catch (error) {
      await run.stop();
      throw error;
    }
  };

  let port = options.port ?? (await freePort());
  for (let attempt = 1; ; attempt++) {
    try {
      await launch(port);
      break;
    } catch (error) {
      // freePort() can race with another process; retry only ports we chose.
      const taken = runs.at(-1)?.output().includes('address already in use');
      if (options.port !== undefined || !taken || attempt >= 3) {
        await removeTempDir(workDir);
        throw error;
      }
      port = await freePort();
    }
  }

  // The access log is all of stdout; the JSON app log goes to stderr.
  const allRequests = (): RegistryRequest[] => runs.flatMap((run) => parseAccessLog(run.stdout()));
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await runs.at(-1)?.stop();
  };

  return {
    url,
    host: `127.0.0.1:${port}`,
    port,
    dataDir,
    requests: () => allRequests().slice(cleared),
    async settle() {
      const mark = `${SUPPORT_MARK}${randomUUID()}`;
      // A TLS registry's certificate is the test's own: trusted for this request only.
      const dispatcher = options.tls ? new Agent({ connect: { ca: options.tls.cert } }) : undefined;
      const response = await undiciFetch(`${url}/v2/?${mark}`, dispatcher ? { dispatcher } : {});
      await response.body?.cancel();
      await dispatcher?.close();
      const deadline = Date.now() + 5_000;
      while (!runs.some((run) => run.output().includes(mark))) {
        if (Date.now() > deadline) throw new Error(`registry ${url} did not log ${mark}`);
        await sleep(5);
      }
    },
    clearRequests() {
      cleared = allRequests().length;
    },
    output: () => runs.map((run) => run.output()).join(''),
    pid() {
      const pid = runs.at(-1)?.pid;
      if (pid === undefined || !runs.at(-1)?.running()) throw new Error(`registry ${url} is not running`);
      return pid;
    },
    stop,
    async start() {
      if (runs.at(-1)?.running()) throw new Error(`registry ${url} is already running`);
      await launch(port);
    },
    async dispose() {
      await stop();
      await removeTempDir(workDir);
    },
  };
}

function parseAccessLog(text: string): RegistryRequest[] {
  const requests: RegistryRequest[] = [];
  for (const [, method = '', uri = '', status = ''] of text.matchAll(ACCESS_LINE)) {
    if (uri.includes(SUPPORT_MARK)) continue;
    requests.push({ method, path: uri.split('?')[0] ?? uri, status: Number(status) });
  }
  return requests;
}
