// `skopeo list-tags` with credentials, isolated from the host as skopeo.ts runs skopeo (an empty auth
// file, empty registries.conf, HOME and TMPDIR under a temp dir); skopeo.ts keeps its runner private.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { runCommand } from './command.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

/** The tags of `ref` (docker://host/repo) as skopeo lists them; throws with skopeo's stderr when it fails. */
export async function skopeoListTags(ref: string, options: { creds?: string; tlsVerify?: boolean; timeoutMs?: number } = {}): Promise<{ Repository: string; Tags: string[] }> {
  const skopeo = requireBinary('skopeo', 'skopeo');
  const home = await makeTempDir('skopeo-home');
  try {
    const authFile = join(home, 'auth.json');
    const registriesConf = join(home, 'registries.conf');
    const registriesD = join(home, 'registries.d');
    await writeFile(authFile, JSON.stringify({ auths: {} }));
    await writeFile(registriesConf, '');
    await mkdir(registriesD);
    const args = ['--registries.d', registriesD, '--tmpdir', home, 'list-tags', '--authfile', authFile, `--tls-verify=${options.tlsVerify ?? false}`];
    if (options.creds !== undefined) args.push('--creds', options.creds);
    const { stdout } = await runCommand(skopeo, [...args, ref], {
      timeoutMs: options.timeoutMs,
      env: { PATH: process.env.PATH, HOME: home, TMPDIR: home, DOCKER_CONFIG: home, REGISTRY_AUTH_FILE: authFile, CONTAINERS_REGISTRIES_CONF: registriesConf },
    });
    return JSON.parse(stdout) as { Repository: string; Tags: string[] };
  } finally {
    await removeTempDir(home);
  }
}
