// An upstream's outbound proxy: its own `proxy:` setting, else the conventional environment variables
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; the lower-case forms win, as in curl). Credentials inside an
// environment proxy URL are taken out of it, so that the URL can be shown and logged.
import type { ProxyConfig, ProxyEndpoint } from './config.ts';
import { Secret } from './secret.ts';

export type ProxySetting = false | string | { readonly url: string; readonly credentials?: unknown };

/**
 * `credentials`: the setting's credentials, already resolved (username and password only); `problems`
 * collects what is wrong instead of throwing, like the rest of the config's checks.
 */
export function resolveProxy(
  setting: ProxySetting | undefined,
  credentials: { readonly username: string; readonly password: Secret } | undefined,
  env: NodeJS.ProcessEnv,
  where: string,
  problems: string[],
): ProxyConfig | undefined {
  if (setting === false) return undefined;
  if (setting !== undefined) {
    const endpoint: ProxyEndpoint = { url: new URL(typeof setting === 'string' ? setting : setting.url).origin, ...(credentials ? { credentials } : {}) };
    return { http: endpoint, https: endpoint, noProxy: '' };
  }
  const http = fromEnv(env.http_proxy ?? env.HTTP_PROXY, `${where} (HTTP_PROXY)`, problems);
  const https = fromEnv(env.https_proxy ?? env.HTTPS_PROXY, `${where} (HTTPS_PROXY)`, problems);
  if (!http && !https) return undefined;
  return { ...(http ? { http } : {}), ...(https ? { https } : {}), noProxy: env.no_proxy ?? env.NO_PROXY ?? '' };
}

/** `proxy.example:3128` or `http://user:pass@proxy.example:3128`, as curl takes them. */
function fromEnv(value: string | undefined, where: string, problems: string[]): ProxyEndpoint | undefined {
  if (!value) return undefined;
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  if (!URL.canParse(text) || !/^https?:$/.test(new URL(text).protocol)) {
    problems.push(`${where}: not an http:// or https:// proxy URL`);
    return undefined;
  }
  const url = new URL(text);
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  return { url: url.origin, ...(username ? { credentials: { username, password: new Secret(password) } } : {}) };
}
