import { randomUUID, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { runCommand } from './command.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface TokenIssuerOptions {
  /** Known users and their passwords; they get every action they ask for. */
  users?: Record<string, string>;
  /** Answer requests without credentials with pull-only tokens (default false: 401). */
  allowAnonymous?: boolean;
  /** The `service` the registry expects in the token audience. */
  service?: string;
}

export interface IssuedToken {
  /** The requested scopes, space separated ('' when none). */
  scope: string;
  user?: string;
}

export interface TokenIssuer {
  /** http://127.0.0.1:PORT/token */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate the registry trusts (`auth.token.rootcertbundle`). */
  rootCertBundlePath: string;
  issued(): IssuedToken[];
  stop(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

const TOKEN_TTL_SECONDS = 300;

/**
 * A Docker token server (distribution's docs/spec/auth/token.md) that
 * docker-registry 2.8 accepts: RS256 JWTs whose `x5c` header carries a
 * self-signed certificate which is also the registry's rootcertbundle.
 * Supports GET with optional Basic auth and the OAuth2 password grant (POST)
 * that containerd tries first.
 */
export async function startTokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const openssl = requireBinary('openssl', 'openssl');
  const dir = await makeTempDir('token-issuer');
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await runCommand(
    openssl,
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=ocimirror-test-token-issuer'],
    { env: { PATH: process.env.PATH, HOME: dir } },
  );
  const key = await readFile(keyPath, 'utf8');
  const certDer = (await readFile(certPath, 'utf8')).replace(/-----[^-]+-----|\s/g, '');
  const service = options.service ?? 'ocimirror-test-registry';
  const issuer = 'ocimirror-test-token-issuer';
  const users = options.users ?? {};
  const issued: IssuedToken[] = [];

  const mint = (access: Access[], user: string | undefined): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      exp: now + TOKEN_TTL_SECONDS,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    return `${signingInput}.${sign('sha256', Buffer.from(signingInput), key).toString('base64url')}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token-issuer');
    let params = url.searchParams;
    let user: string | undefined;
    let password: string | undefined;
    if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
      if (params.get('grant_type') !== 'password') return reply(res, 400, { error: 'unsupported_grant_type' });
      user = params.get('username') ?? undefined;
      password = params.get('password') ?? undefined;
    } else {
      [user, password] = basicCredentials(req.headers.authorization);
    }
    if (user !== undefined && (users[user] === undefined || users[user] !== password)) {
      return reply(res, 401, { error: 'invalid_grant', details: 'wrong user name or password' });
    }
    if (user === undefined && !options.allowAnonymous) {
      return reply(res, 401, { error: 'invalid_grant', details: 'authentication required' });
    }
    const scopes = params.getAll('scope').flatMap((scope) => scope.split(' ')).filter((s) => s !== '');
    const access = scopes.map(parseScope).map((wanted) => ({
      ...wanted,
      actions: user === undefined ? wanted.actions.filter((action) => action === 'pull') : wanted.actions,
    }));
    issued.push(user === undefined ? { scope: scopes.join(' ') } : { scope: scopes.join(' '), user });
    const token = mint(access, user);
    reply(res, 200, {
      token,
      access_token: token,
      expires_in: TOKEN_TTL_SECONDS,
      issued_at: new Date().toISOString(),
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => reply(res, 500, { error: String(error) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundlePath: certPath,
    issued: () => [...issued],
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeTempDir(dir);
    },
  };
}

/** `repository:library/alpine:pull,push` -> access entry (the name is everything between the first and last colon). */
function parseScope(scope: string): Access {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return { type: scope, name: '', actions: [] };
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter((a) => a !== ''),
  };
}

function basicCredentials(header: string | undefined): [string | undefined, string | undefined] {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match?.[1]) return [undefined, undefined];
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? [decoded, ''] : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
