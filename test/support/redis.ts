import { findBinary, missingBinaryMessage } from './binaries.ts';
import { freePort } from './ports.ts';
import { startProcess, type ManagedProcess } from './process.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface RunningRedis {
  /** redis://127.0.0.1:PORT */
  url: string;
  host: string;
  port: number;
  /** Stops the server; it keeps nothing (no RDB, no AOF). */
  stop(): Promise<void>;
  /** Starts an empty server again on the same port. */
  start(): Promise<void>;
  /** stop() and delete the temp dir. */
  dispose(): Promise<void>;
  output(): string;
}

interface RedisServer {
  stop(): Promise<void>;
  output(): string;
}

const REDIS_ARGS = ['--save', '', '--appendonly', 'no'];

/**
 * A throwaway Redis: the local redis-server on 127.0.0.1, or, when it is not
 * installed but a Docker engine is reachable, a redis:7 container via
 * testcontainers.
 */
export async function startRedis(options: { port?: number } = {}): Promise<RunningRedis> {
  const port = options.port ?? (await freePort());
  const binary = findBinary('redis-server');
  const dir = await makeTempDir('redis');
  const launch = async (): Promise<RedisServer> =>
    binary ? startNative(binary, port, dir) : startContainer(port);
  let server: RedisServer | undefined;
  try {
    server = await launch();
  } catch (error) {
    await removeTempDir(dir);
    throw error;
  }
  const outputs: string[] = [];
  const stop = async (): Promise<void> => {
    if (server === undefined) return;
    await server.stop();
    outputs.push(server.output());
    server = undefined;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    stop,
    async start() {
      if (server !== undefined) throw new Error(`redis on port ${port} is already running`);
      server = await launch();
    },
    async dispose() {
      await stop();
      await removeTempDir(dir);
    },
    output: () => [...outputs, server?.output() ?? ''].join(''),
  };
}

async function startNative(binary: string, port: number, dir: string): Promise<RedisServer> {
  const run: ManagedProcess = startProcess({
    command: binary,
    args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...REDIS_ARGS],
    name: `redis-server :${port}`,
    cwd: dir,
    env: { PATH: process.env.PATH },
  });
  try {
    await run.waitReady({ output: 'Ready to accept connections' });
    await run.waitReady({ tcp: { port } });
  } catch (error) {
    await run.stop();
    throw error;
  }
  return {
    async stop() {
      await run.stop();
    },
    output: () => run.output(),
  };
}

async function startContainer(port: number): Promise<RedisServer> {
  try {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('redis:7')
      .withExposedPorts({ container: 6379, host: port })
      .withCommand(['redis-server', ...REDIS_ARGS])
      .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
      .start();
    return {
      async stop() {
        await container.stop();
      },
      output: () => '',
    };
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Error(
      `${missingBinaryMessage('redis-server', 'redis-server')} ` +
        `The fallback, a redis:7 container, failed too: ${reason}`,
      { cause },
    );
  }
}
