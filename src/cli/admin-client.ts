// The operator commands' client of the running mirror's admin API (see src/admin/routes.ts).
import { ConfigError } from '../config/load.ts';
import { ImageRefError, type ImageRef } from '../oci/image-ref.ts';
import { adminUrl } from './endpoints.ts';

/** An answer of the admin API other than 2xx, or no answer at all. */
export class AdminError extends Error {
  override readonly name = 'AdminError';
  readonly status: number | undefined;
  readonly code: string | undefined;
  constructor(message: string, options: { status?: number; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.code = options.code;
  }
}

/** --admin, else --config's admin.listen, else $OCIMIRROR_ADMIN, else $OCIMIRROR_CONFIG's, else the default (endpoints.ts). */
export function adminBase(flag: string | undefined, configFile?: string): string {
  return adminUrl({ url: flag, config: configFile });
}

export async function adminRequest<T>(base: string, method: 'GET' | 'DELETE' | 'POST', path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { method, headers: { accept: 'application/json', ...adminCredentials() }, signal: AbortSignal.timeout(300_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if ((err as Error).name === 'TimeoutError') throw new AdminError(`the mirror's admin API at ${base} did not answer in time`, { cause: err });
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new AdminError(`cannot reach the mirror's admin API at ${base} (${why}); is \`ocimirror serve\` running with admin.listen there? (--admin URL, --config FILE, $OCIMIRROR_ADMIN or $OCIMIRROR_CONFIG)`, { cause: err });
  }
  const text = await res.text();
  if (!res.ok) {
    let code: string | undefined;
    let message = text.slice(0, 500) || res.statusText;
    try {
      const first = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors?.[0];
      code = first?.code;
      if (first?.message) message = first.message;
    } catch {
      // not OCI error JSON: keep the text
    }
    throw new AdminError(`${message}${code ? ` (${code})` : ''}`, { status: res.status, ...(code ? { code } : {}) });
  }
  return JSON.parse(text) as T;
}

/** With client authentication on, the admin API wants an admin's user:password: $OCIMIRROR_ADMIN_AUTH. */
function adminCredentials(): Record<string, string> {
  const auth = process.env.OCIMIRROR_ADMIN_AUTH;
  return auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {};
}

/** `?ns=<registry>` when the reference names one: the mirror then refuses a registry it has no upstream for. */
function query(ref: ImageRef, extra: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  if (ref.registry) params.set('ns', ref.registry);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) params.set(k, v);
  return params.size ? `?${params}` : '';
}

export function imagePath(ref: ImageRef, extra: Record<string, string | undefined> = {}): string {
  const reference = ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`;
  return `/_ocimirror/images/${ref.repository}${reference}${query(ref, extra)}`;
}

export function repositoryPath(ref: ImageRef, extra: Record<string, string | undefined> = {}): string {
  return `/_ocimirror/repositories/${ref.repository}${query(ref, extra)}`;
}

/** Runs a command body; known failures become one line on stderr: exit code 2 for a config mistake, else 1. */
export async function reportFailures(command: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof AdminError || err instanceof ImageRefError || err instanceof ConfigError) {
      console.error(`ocimirror ${command}: ${err.message}`);
      return err instanceof ConfigError ? 2 : 1;
    }
    throw err;
  }
}
