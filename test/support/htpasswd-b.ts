// An htpasswd file exactly as an operator makes one: the real `htpasswd -B` (apache2-utils), bcrypt,
// one `htpasswd -b` run per user (the first creates the file). htpasswd.ts makes single bcrypt lines
// through crypt(3) instead; this is for tests that must use the program the documentation names.
import { readFile } from 'node:fs/promises';
import { requireBinary } from './binaries.ts';
import { runCommand } from './command.ts';

/** Writes `file` with one bcrypt entry per user (cost 5: fast logins); resolves with the file's text. */
export async function writeHtpasswdFile(file: string, users: Readonly<Record<string, string>>): Promise<string> {
  const htpasswd = requireBinary('htpasswd', 'apache2-utils');
  let first = true;
  for (const [user, password] of Object.entries(users)) {
    if (user.includes(':')) throw new Error(`htpasswd user names cannot contain ":": ${user}`);
    // -B bcrypt, -C cost, -b password from the command line, -c create the file (first user only).
    await runCommand(htpasswd, [first ? '-cbB' : '-bB', '-C', '5', file, user, password], { env: { PATH: process.env.PATH } });
    first = false;
  }
  const text = await readFile(file, 'utf8');
  for (const user of Object.keys(users)) {
    if (!new RegExp(`^${user.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\$2y\\$05\\$[./A-Za-z0-9]{53}$`, 'm').test(text)) {
      throw new Error(`htpasswd -B did not write a bcrypt entry for ${user}:\n${text}`);
    }
  }
  return text;
}
