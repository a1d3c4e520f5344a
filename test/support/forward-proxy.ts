// A real outbound HTTP proxy for tests: Debian's tinyproxy on loopback. It forwards plain-HTTP requests
// (absolute-form targets) and tunnels CONNECT, and logs every request, which requests() reads. It may
// only ever connect to 127.0.0.1: a filter denies every other destination, and CONNECT is allowed only
// to the ports the test names.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { freePort } from './ports.ts';
import { startProcess } from './process.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface ForwardProxyOptions {
  /** Proxy-Authorization: Basic required with these. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Ports CONNECT may tunnel to (on 127.0.0.1); none: CONNECT refused. */
  readonly connectPorts?: readonly number[];
}

export interface ForwardProxy {
  /** http://127.0.0.1:PORT, without credentials. */
  readonly url: string;
  readonly port: number;
  /** The request lines it received so far: `GET http://127.0.0.1:5000/v2/ HTTP/1.1`, `CONNECT 127.0.0.1:5443 HTTP/1.1`. */
  requests(): Promise<string[]>;
  stop(): Promise<void>;
}

const REQUEST_LINE = /\]: Request \(file descriptor \d+\): (.*)$/gm;

export async function startForwardProxy(options: ForwardProxyOptions = {}): Promise<ForwardProxy> {
  const binary = requireBinary('tinyproxy', 'tinyproxy');
  const dir = await makeTempDir('forward-proxy');
  const port = await freePort();
  const logFile = join(dir, 'tinyproxy.log');
  await writeFile(join(dir, 'filter'), '^127\\.0\\.0\\.1$\n');
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    `LogFile "${logFile}"`,
    'LogLevel Info',
    'MaxClients 100',
    'Allow 127.0.0.1',
    // Destinations: 127.0.0.1 only (the host of the request line or the CONNECT target).
    `Filter "${join(dir, 'filter')}"`,
    'FilterType ere',
    'FilterDefaultDeny Yes',
    // Without a ConnectPort line tinyproxy tunnels to any port; port 0 allows none.
    ...(options.connectPorts?.length ? options.connectPorts.map((p) => `ConnectPort ${p}`) : ['ConnectPort 0']),
    ...(options.credentials ? [`BasicAuth ${options.credentials.username} ${options.credentials.password}`] : []),
  ];
  const configFile = join(dir, 'tinyproxy.conf');
  await writeFile(configFile, `${lines.join('\n')}\n`);
  const run = startProcess({ command: binary, args: ['-d', '-c', configFile], name: `tinyproxy :${port}`, env: { PATH: process.env.PATH } });
  try {
    await run.waitReady({ tcp: { port } });
  } catch (err) {
    await run.stop();
    await removeTempDir(dir);
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async requests() {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      return [...text.matchAll(REQUEST_LINE)].map((m) => m[1]!.trim());
    },
    async stop() {
      await run.stop();
      await removeTempDir(dir);
    },
  };
}
