// A credential that cannot leak by accident: JSON, string and inspect forms are all redacted.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { inspect } from 'node:util';

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}

/**
 * A secret given inline, by the name of an environment variable, or as a file's path (trimmed), whichever
 * one is set; a variable that is unset or a file that cannot be read is a problem for `where`.
 */
export function readSecret(
  source: { inline?: string | undefined; env?: string | undefined; file?: string | undefined },
  env: NodeJS.ProcessEnv,
  cwd: string,
  where: string,
  problems: string[],
): Secret | undefined {
  if (source.inline !== undefined) return new Secret(source.inline);
  if (source.env !== undefined) {
    const value = env[source.env];
    if (!value) problems.push(`${where}: environment variable ${source.env} is not set`);
    return value ? new Secret(value) : undefined;
  }
  if (source.file !== undefined) {
    try {
      return new Secret(readFileSync(resolve(cwd, source.file), 'utf8').trim());
    } catch (err) {
      problems.push(`${where}: cannot read ${source.file}: ${(err as Error).message}`);
    }
  }
  return undefined;
}
