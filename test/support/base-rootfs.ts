// A base image built on this machine, never pulled: a tar of a rootfs holding Debian's static busybox
// (runs with no libc in the image) and a marker file, for `docker import` / `podman import`. Written
// in memory once per test process, then into each caller's own dir; the bytes are fixed (root-owned,
// mtime 0), so every import of it gives the same layer.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { tarEnd, tarHeader, tarPadding } from './tar-writer.ts';

/** A file every image built from the base has, with this text. */
export const BASE_MARKER = { path: 'etc/ocimirror-base', text: 'ocimirror test base image (busybox-static)\n' };

let cached: Promise<Buffer> | undefined;

/** Writes the rootfs tarball (uncompressed tar) into `dir` (a dir the caller owns and removes); returns its path. */
export async function writeBaseRootfs(dir: string): Promise<string> {
  cached ??= buildTarball().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  const file = join(dir, 'base-rootfs.tar');
  await writeFile(file, await cached);
  return file;
}

async function buildTarball(): Promise<Buffer> {
  const path = requireBinary('busybox', 'busybox-static');
  const busybox = await readFile(path);
  if (hasInterpreter(busybox)) {
    throw new Error(`${path} is dynamically linked (Debian's "busybox" package); the base image needs busybox-static: \`apt-get install -y busybox-static\``);
  }
  const marker = Buffer.from(BASE_MARKER.text);
  const parts: Buffer[] = [];
  for (const dir of ['bin', 'etc', 'tmp']) parts.push(tarHeader({ path: dir, type: 'directory', size: 0, mode: dir === 'tmp' ? 0o1777 : 0o755 }));
  parts.push(tarHeader({ path: 'bin/busybox', type: 'file', size: busybox.length, mode: 0o755 }), busybox, tarPadding(busybox.length));
  parts.push(tarHeader({ path: BASE_MARKER.path, type: 'file', size: marker.length }), marker, tarPadding(marker.length));
  parts.push(tarEnd());
  return Buffer.concat(parts);
}

/** Whether a 64-bit little-endian ELF file names a dynamic loader (a PT_INTERP program header). */
function hasInterpreter(elf: Buffer): boolean {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (elf.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}
