// A real redis-server that a test can freeze (SIGSTOP) and thaw (SIGCONT): the kernel still accepts
// connections and commands on its port, and nothing ever answers — a hung server or a partition, as a
// client sees it. Stopping the process by its pid is the only way to get that from a real Redis.
import { requireBinary } from './binaries.ts';
import { freePort } from './ports.ts';
import { startProcess } from './process.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface FreezableRedis {
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  freeze(): void;
  thaw(): void;
  /** Thaws, stops the server and deletes its temp dir. */
  dispose(): Promise<void>;
}

export async function startFreezableRedis(): Promise<FreezableRedis> {
  const binary = requireBinary('redis-server', 'redis-server');
  const port = await freePort();
  const dir = await makeTempDir('frozen-redis');
  const server = startProcess({
    command: binary,
    args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    name: `redis-server :${port}`,
    cwd: dir,
    env: { PATH: process.env.PATH },
  });
  const pid = server.pid;
  const signal = (name: NodeJS.Signals) => {
    if (pid !== undefined && server.running()) process.kill(pid, name);
  };
  try {
    if (pid === undefined) throw new Error('redis-server did not start');
    await server.waitReady({ output: 'Ready to accept connections' });
  } catch (err) {
    await server.stop();
    await removeTempDir(dir);
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    dispose: async () => {
      signal('SIGCONT');
      await server.stop();
      await removeTempDir(dir);
    },
  };
}
