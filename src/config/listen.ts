// Listen addresses as the config and the command line write them.

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:5000", ":5000" (every interface), "[::1]:5000", "0.0.0.0:80"; a bare port is refused (schema.ts says why). */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new Error(`listen address "${text}" is not host:port`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}
