import type { TokenIssuer } from './token-issuer.ts';

export type RegistryAuth =
  | { kind: 'htpasswd'; username: string; password: string }
  | { kind: 'token'; issuer: TokenIssuer };

export interface RegistryProxy {
  remoteUrl: string;
  username?: string;
  password?: string;
}

/**
 * docker-registry 2.8's configuration. YAML is a superset of JSON, so the
 * caller writes it with JSON.stringify.
 */
export function registryConfig(options: {
  port: number;
  /** Kept across restarts so that uploads in progress survive them. */
  httpSecret: string;
  dataDir: string;
  htpasswdPath?: string;
  auth?: RegistryAuth;
  proxy?: RegistryProxy;
  blobRedirectBaseUrl?: string;
  /** PEM files: serve HTTPS. */
  tls?: { certificate: string; key: string } | undefined;
}): Record<string, unknown> {
  return {
    version: '0.1',
    // JSON app logs plus the Apache combined access log that registry.ts parses:
    // the combined log has a line for every request, including 401s, which
    // the JSON "response completed" lines omit.
    log: { level: 'info', formatter: 'json', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: options.dataDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${options.port}`,
      secret: options.httpSecret,
      ...(options.tls ? { tls: options.tls } : {}),
    },
    health: { storagedriver: { enabled: false } },
    ...(options.auth ? { auth: authConfig(options.auth, options.htpasswdPath) } : {}),
    ...(options.proxy ? { proxy: proxyConfig(options.proxy) } : {}),
    // distribution's redirect middleware: blob GETs answer 307 to <baseurl><storage path>, as Docker
    // Hub's CDN redirects do.
    ...(options.blobRedirectBaseUrl ? { middleware: { storage: [{ name: 'redirect', options: { baseurl: options.blobRedirectBaseUrl } }] } } : {}),
  };
}

function authConfig(auth: RegistryAuth, htpasswdPath: string | undefined): Record<string, unknown> {
  if (auth.kind === 'htpasswd') {
    if (htpasswdPath === undefined) throw new Error('htpasswd auth needs an htpasswd file');
    return { htpasswd: { realm: 'ocimirror-test', path: htpasswdPath } };
  }
  const { realm, service, issuer, rootCertBundlePath } = auth.issuer;
  return { token: { realm, service, issuer, rootcertbundle: rootCertBundlePath } };
}

function proxyConfig(proxy: RegistryProxy): Record<string, unknown> {
  return {
    remoteurl: proxy.remoteUrl,
    ...(proxy.username !== undefined ? { username: proxy.username } : {}),
    ...(proxy.password !== undefined ? { password: proxy.password } : {}),
  };
}
