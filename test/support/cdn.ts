// A stand-in for the CDN that Docker Hub redirects blob downloads to: a static file server on another
// loopback address (another host, as far as HTTP is concerned) serving the registry's storage
// directory, recording the headers each request carried.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';

export interface Cdn {
  /** http://127.0.0.2:PORT/ — pass as the registry's blobRedirectBaseUrl. */
  readonly url: string;
  requests(): { path: string; headers: IncomingHttpHeaders }[];
  stop(): Promise<void>;
}

export async function startCdn(root: string, host = '127.0.0.2'): Promise<Cdn> {
  const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://cdn').pathname;
    seen.push({ path, headers: req.headers });
    const file = join(root, normalize(decodeURIComponent(path)).replace(/^(\.\.[/\\])+/, ''));
    stat(file).then(
      (info) => {
        res.writeHead(200, { 'content-length': info.size, 'content-type': 'application/octet-stream' });
        createReadStream(file).pipe(res);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    requests: () => [...seen],
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
