// Ready-to-copy pull commands for an image through this mirror, as each client spells them; on plain
// HTTP each is told so (clients assume TLS for any registry but localhost).
export interface PullCommand {
  readonly client: string;
  readonly command: string;
}

export function pullCommands(host: string, reference: string, plainHttp: boolean): PullCommand[] {
  const ref = `${host}/${reference}`;
  const base = reference.replace(/[@:].*$/, '').split('/').pop() ?? 'image';
  return [
    { client: 'docker', command: `docker pull ${ref}` },
    { client: 'podman', command: `podman pull ${plainHttp ? '--tls-verify=false ' : ''}${ref}` },
    { client: 'ctr', command: `ctr image pull ${plainHttp ? '--plain-http ' : ''}${ref}` },
    { client: 'skopeo', command: `skopeo copy ${plainHttp ? '--src-tls-verify=false ' : ''}docker://${ref} oci-archive:${base}.tar` },
    { client: 'containerlab', command: `image: ${ref}` },
  ];
}
