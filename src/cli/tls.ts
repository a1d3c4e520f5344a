// `ocimirror tls init`: a CA and a server certificate for the TLS listener (DNS-spoof mode), and how
// to make the nodes trust the CA.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.ts';
import type { ConfigInput } from '../config/schema.ts';
import { certificateNames, initTls, SERVER_VALID_DAYS, tlsPaths, type TlsPaths } from '../tls/init.ts';

export const TLS_USAGE = `Usage: ocimirror tls init [options]

Creates <dataDir>/tls/ca.crt and ca.key, and the server certificate and key that tls.listen serves
(tls.certFile/keyFile, default <dataDir>/tls/server.crt and server.key; keys are mode 0600). The
server certificate names every alias of every upstream (the names nodes spoof to the mirror), the
names and addresses given here, localhost, 127.0.0.1 and ::1. An existing CA is kept, so re-running
after a change of upstreams needs nothing new on the nodes. Run it as the user that runs serve.

Options:
  -c, --config FILE     the mirror's YAML config (default: $OCIMIRROR_CONFIG, else built-in defaults)
  -d, --data-dir DIR    data directory (default: the config's dataDir)
      --name NAME       a name the nodes reach the mirror by (repeatable)
      --ip IP           an address the nodes reach the mirror at (repeatable)
      --days N          server certificate validity in days (default ${SERVER_VALID_DAYS})
      --new-ca          replace the CA too (every node must then trust the new one)`;

export async function tlsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      'data-dir': { type: 'string', short: 'd' },
      name: { type: 'string', multiple: true },
      ip: { type: 'string', multiple: true },
      days: { type: 'string' },
      'new-ca': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(TLS_USAGE);
    return 0;
  }
  if (positionals.join(' ') !== 'init') {
    console.error(`ocimirror tls: ${positionals.length ? `unknown subcommand "${positionals.join(' ')}"` : 'which subcommand?'}\n\n${TLS_USAGE}`);
    return 2;
  }
  const days = values.days === undefined ? SERVER_VALID_DAYS : Number(values.days);
  if (!Number.isInteger(days) || days < 1) {
    console.error(`ocimirror tls: --days must be a whole number of days (got "${values.days}")`);
    return 2;
  }

  let paths: TlsPaths;
  let names: string[];
  try {
    const overrides: Partial<ConfigInput> = values['data-dir'] ? { dataDir: values['data-dir'] } : {};
    const config = loadConfig({ ...(values.config ? { file: values.config } : {}), overrides, skipCredentials: true });
    paths = tlsPaths(config);
    names = certificateNames(config.upstreams, { names: values.name ?? [], ips: values.ip ?? [] });
  } catch (err) {
    console.error(`ocimirror tls: ${(err as Error).message}`);
    return err instanceof ConfigError ? 2 : 1;
  }

  let result;
  try {
    result = await initTls({ paths, names, newCa: values['new-ca'] ?? false, serverValidDays: days });
  } catch (err) {
    console.error(`ocimirror tls: ${(err as Error).message}`);
    return 1;
  }
  console.log(
    [
      result.caCreated ? `created CA      ${paths.caCert} (key ${paths.caKey})` : `kept CA         ${paths.caCert}`,
      `server cert     ${paths.serverCert} (key ${paths.serverKey}), valid until ${result.notAfter.toISOString().slice(0, 10)}`,
      `names           ${result.names.join(', ')}`,
      '',
      trustInstructions(paths.caCert),
    ].join('\n'),
  );
  return 0;
}

function trustInstructions(caCert: string): string {
  return `Serve it with tls.listen in the config (e.g. tls: { listen: [":443"] }), then make every node
trust the CA. Copy ${caCert} to the node, then:
  Debian/Ubuntu  cp ca.crt /usr/local/share/ca-certificates/ocimirror.crt && update-ca-certificates
  RHEL/Fedora    cp ca.crt /etc/pki/ca-trust/source/anchors/ocimirror.crt && update-ca-trust
  containerd     uses the system store above in DNS-spoof mode; for an https mirror in hosts.toml:
                 ocimirror config containerd --endpoint https://mirror --ca /etc/containerd/certs.d/ocimirror-ca.crt
  podman, cri-o  or per registry: /etc/containers/certs.d/<host[:port]>/ca.crt
  docker         or per registry: /etc/docker/certs.d/<host[:port]>/ca.crt`;
}
