// Just enough of POSIX ustar to write deterministic image layers: regular
// files and directories, owned by root, mtime 0.

const BLOCK = 512;

export interface TarHeader {
  path: string;
  type: 'file' | 'directory';
  size: number;
  mode?: number;
}

/** The 512-byte ustar header of one entry. */
export function tarHeader(entry: TarHeader): Buffer {
  const header = Buffer.alloc(BLOCK);
  const { name, prefix } = splitPath(entry.type === 'directory' ? `${entry.path}/` : entry.path);
  header.write(name, 0, 100, 'utf8');
  writeOctal(header, entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644), 100, 8);
  writeOctal(header, 0, 108, 8); // uid
  writeOctal(header, 0, 116, 8); // gid
  writeOctal(header, entry.type === 'directory' ? 0 : entry.size, 124, 12);
  writeOctal(header, 0, 136, 12); // mtime
  header.write(entry.type === 'directory' ? '5' : '0', 156, 1, 'ascii');
  header.write('ustar\u000000', 257, 8, 'ascii');
  header.write('root', 265, 32, 'ascii');
  header.write('root', 297, 32, 'ascii');
  header.write(prefix, 345, 155, 'utf8');
  // The checksum is computed with its own field filled with spaces.
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return header;
}

/** Zero bytes that round an entry of `size` bytes up to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The two zero blocks that end an archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
  const digits = value.toString(8).padStart(length - 1, '0');
  if (digits.length > length - 1) throw new Error(`tar: ${value} does not fit in ${length - 1} octal digits`);
  header.write(`${digits}\u0000`, offset, length, 'ascii');
}

function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  const cut = path.lastIndexOf('/', path.length - 2);
  const name = path.slice(cut + 1);
  const prefix = path.slice(0, cut);
  if (cut <= 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) {
    throw new Error(`tar: path too long for ustar: ${path}`);
  }
  return { name, prefix };
}
