// Plain-text output for the operator commands: sizes, times, digests, aligned tables.
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.ts';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

/** UTC, to the second: "2026-11-23 17:04:49Z"; "-" when unknown. */
export function formatTime(ms: number | undefined): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

/** "sha256:" and the first 12 hex digits, as docker shows image IDs. */
export function shortDigest(digest: string): string {
  const [algorithm, hex = ''] = digest.split(':');
  return `${algorithm}:${hex.slice(0, 12)}`;
}

const KINDS: Record<string, string> = {
  [OCI_INDEX]: 'oci index',
  [OCI_MANIFEST]: 'oci image',
  [DOCKER_MANIFEST_LIST]: 'docker list',
  [DOCKER_MANIFEST]: 'docker image',
};

export function manifestKind(mediaType: string): string {
  return KINDS[mediaType] ?? mediaType;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
