import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/**
 * Absolute path of `name` found on PATH (or `name` itself when it is an
 * absolute executable path). Integration tests never skip: a missing program
 * is a broken test machine, so the error says exactly how to fix it.
 */
export function requireBinary(name: string, debPackage: string): string {
  const found = findBinary(name);
  if (found) return found;
  throw new Error(missingBinaryMessage(name, debPackage));
}

/** What to tell someone whose machine lacks `name`. */
export function missingBinaryMessage(name: string, debPackage: string): string {
  return (
    `Required program "${name}" was not found on PATH. ` +
    `Install it with \`apt-get install -y ${debPackage}\` ` +
    `or run \`bash scripts/test-deps.sh\` (installs every test dependency).`
  );
}

// Daemons such as nginx live in sbin, which a non-root PATH often lacks.
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Absolute path of `name` on PATH (or in an sbin directory), or undefined. */
export function findBinary(name: string): string | undefined {
  const candidates = isAbsolute(name)
    ? [name]
    : [...(process.env.PATH ?? '').split(delimiter), ...SBIN_DIRS]
        .filter((dir) => dir !== '')
        .map((dir) => join(dir, name));
  return candidates.find(isExecutable);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
