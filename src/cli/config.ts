// `ocimirror config <client>`: the client configuration that points nodes at this mirror, derived
// from the mirror table of the config file. Prints it, or writes the files under --write DIR.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { containerdHosts } from '../client-config/containerd.ts';
import { dockerDaemonJson } from '../client-config/docker.ts';
import { etcHosts } from '../client-config/hosts.ts';
import { ClientConfigError, FALLBACKS, parseEndpoint, type ClientOptions, type Fallback, type GeneratedConfig, type MirrorTable } from '../client-config/options.ts';
import { registriesConf } from '../client-config/registries-conf.ts';
import { ConfigError, loadConfig } from '../config/load.ts';

export const CONFIG_USAGE = `Usage: ocimirror config <containerd|crio|podman|docker|hosts> [options]

Prints the configuration that points a client at this mirror, for every upstream of the mirror
table (or writes the files under --write DIR).

  containerd   <host>/hosts.toml for each registry name (install under /etc/containerd/certs.d)
  crio, podman registries.conf v2 with a mirror per registry (cri-o, podman, buildah, skopeo)
  docker       daemon.json registry-mirrors (docker mirrors Docker Hub only)
  hosts        /etc/hosts lines for DNS-spoof mode (every registry name -> --ip)

Options:
  -e, --endpoint URL  the mirror as the nodes reach it, e.g. http://mirror:5000 (all but hosts)
  -c, --config FILE   the mirror's YAML config (default: $OCIMIRROR_CONFIG, else built-in defaults)
  -w, --write DIR     write the files under DIR instead of printing them
      --ip IP         hosts: the mirror's address (default: the endpoint's host if it is an IP)
      --ca FILE       https endpoint: path ON THE NODES of the CA that signed the mirror's certificate
      --skip-verify   https endpoint: nodes do not verify the mirror's certificate
      --fallback WHERE  where a node goes when the mirror fails (containerd, crio, podman, docker):
                      upstream  the upstream of the mirror table (default: a lab's private upstream
                                stays the only source)
                      registry  the registry the image names (docker.io, ghcr.io, ...)
                      none      nowhere: the mirror is the only source (docker cannot do this)`;

interface Flags {
  readonly endpoint?: string | undefined;
  readonly ip?: string | undefined;
  readonly ca?: string | undefined;
  readonly skipVerify?: boolean | undefined;
  readonly fallback?: string | undefined;
}

const TARGETS: Record<string, (upstreams: MirrorTable, flags: Flags) => GeneratedConfig> = {
  containerd: (upstreams, flags) => containerdHosts(upstreams, clientOptions(flags)),
  crio: (upstreams, flags) => registriesConf(upstreams, clientOptions(flags), 'crio'),
  podman: (upstreams, flags) => registriesConf(upstreams, clientOptions(flags), 'podman'),
  docker: (upstreams, flags) => dockerDaemonJson(upstreams, clientOptions(flags)),
  hosts: (upstreams, flags) => {
    if (flags.fallback) throw new ClientConfigError('--fallback applies to containerd, crio, podman and docker; DNS-spoofed nodes reach only the mirror');
    return etcHosts(upstreams, { ip: hostsIp(flags) });
  },
};

function clientOptions(flags: Flags): ClientOptions {
  if (!flags.endpoint) throw new ClientConfigError('--endpoint is required: the mirror as the nodes reach it, e.g. http://mirror:5000');
  const endpoint = parseEndpoint(flags.endpoint);
  if (endpoint.protocol === 'http:' && (flags.ca || flags.skipVerify)) throw new ClientConfigError('--ca and --skip-verify apply to https endpoints only');
  const fallback = (flags.fallback ?? 'upstream') as Fallback;
  if (!FALLBACKS.includes(fallback)) throw new ClientConfigError(`--fallback must be ${FALLBACKS.join(', ')} (got "${flags.fallback}")`);
  return { endpoint, fallback, ...(flags.ca ? { caFile: flags.ca } : {}), ...(flags.skipVerify ? { skipVerify: true } : {}) };
}

/** --ip, else the endpoint's host when that is an address. */
function hostsIp(flags: Flags): string {
  if (flags.ip) return flags.ip;
  const host = flags.endpoint ? parseEndpoint(flags.endpoint).hostname.replace(/^\[|\]$/g, '') : '';
  if (isIP(host)) return host;
  throw new ClientConfigError('hosts needs --ip: the address the nodes reach the mirror at');
}

export async function configCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      endpoint: { type: 'string', short: 'e' },
      config: { type: 'string', short: 'c' },
      write: { type: 'string', short: 'w' },
      ip: { type: 'string' },
      ca: { type: 'string' },
      'skip-verify': { type: 'boolean' },
      fallback: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(CONFIG_USAGE);
    return 0;
  }
  const [target, ...extra] = positionals;
  const generate = target ? TARGETS[target] : undefined;
  if (!generate || extra.length) {
    console.error(`ocimirror config: ${target ? `unknown client "${[target, ...extra].join(' ')}"` : 'which client?'}\n\n${CONFIG_USAGE}`);
    return 2;
  }

  let generated: GeneratedConfig;
  try {
    // Client files never contact an upstream: credentials need not be resolvable on this machine.
    const config = loadConfig({ ...(values.config ? { file: values.config } : {}), skipCredentials: true });
    generated = generate(config.upstreams, { endpoint: values.endpoint, ip: values.ip, ca: values.ca, skipVerify: values['skip-verify'], fallback: values.fallback });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ClientConfigError) {
      console.error(`ocimirror config: ${err.message}`);
      return 2;
    }
    throw err;
  }

  if (values.write) {
    for (const file of generated.files) {
      const path = join(values.write, file.path);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, file.content);
      console.log(`wrote ${path}`);
    }
  } else if (generated.files.length === 1) {
    process.stdout.write(generated.files[0]!.content);
  } else {
    // Several files (containerd): each behind a comment naming where it goes.
    process.stdout.write(generated.files.map((f) => `# --- ${f.path} ---\n${f.content}`).join('\n'));
  }
  for (const note of generated.notes) console.error(`# ${note}`);
  return 0;
}
