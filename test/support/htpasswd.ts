import { randomBytes } from 'node:crypto';
import { requireBinary } from './binaries.ts';
import { runCommand } from './command.ts';

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * One `user:bcrypt-hash` line, the only htpasswd format docker-registry
 * accepts. The hash comes from the system crypt(3) (libxcrypt supports
 * bcrypt) through perl, which every Debian system has (perl-base is
 * Essential), so apache2-utils is not needed. Cost 5 keeps logins fast.
 */
export async function htpasswdLine(username: string, password: string): Promise<string> {
  if (username.includes(':')) throw new Error(`htpasswd user names cannot contain ":": ${username}`);
  const perl = requireBinary('perl', 'perl-base');
  const salt = [...randomBytes(22)].map((byte) => BCRYPT_ALPHABET[byte % 64]).join('');
  // The last salt character carries only 2 bits; keep it canonical.
  const canonicalSalt = `${salt.slice(0, 21)}${'.Oeu'[salt.charCodeAt(21) % 4]}`;
  const { stdout } = await runCommand(perl, ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${canonicalSalt}`], {
    env: { PATH: process.env.PATH },
  });
  if (!/^\$2b\$05\$[./A-Za-z0-9]{53}$/.test(stdout)) {
    throw new Error(`crypt(3) did not produce a bcrypt hash (got ${JSON.stringify(stdout)}); is libxcrypt installed?`);
  }
  return `${username}:${stdout}`;
}
