// Digests: parsing with the spec's grammar, and a hasher that checks bytes against a digest as they stream.
import { createHash, type Hash } from 'node:crypto';
import { OciError } from './errors.ts';

/** Algorithms we can verify, with the exact length of their lower-case hex encoding. */
const SUPPORTED: Record<string, number> = { sha256: 64, sha512: 128 };
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface Digest {
  readonly algorithm: 'sha256' | 'sha512';
  readonly hex: string;
  /** The canonical "algorithm:hex" form. */
  readonly value: string;
}

export function looksLikeDigest(reference: string): boolean {
  return reference.includes(':');
}

/** Parses and validates a digest; unknown algorithms and malformed encodings are DIGEST_INVALID. */
export function parseDigest(text: string): Digest {
  if (text.length > 200 || !DIGEST_GRAMMAR.test(text)) throw new OciError('DIGEST_INVALID', 'invalid digest', { detail: { digest: text.slice(0, 200) } });
  const [algorithm, hex] = text.split(':') as [string, string];
  const length = SUPPORTED[algorithm];
  if (length === undefined) throw new OciError('DIGEST_INVALID', `unsupported digest algorithm "${algorithm}"`, { detail: { digest: text } });
  if (hex.length !== length || !/^[0-9a-f]+$/.test(hex)) {
    throw new OciError('DIGEST_INVALID', `invalid ${algorithm} digest: want ${length} lower-case hex characters`, { detail: { digest: text } });
  }
  return { algorithm: algorithm as Digest['algorithm'], hex, value: text };
}

export function digestOf(bytes: Uint8Array, algorithm: Digest['algorithm'] = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Feeds bytes through the digest's algorithm; `matches()` tells at the end whether they were the right ones. */
export class DigestVerifier {
  readonly #expected: Digest;
  readonly #hash: Hash;
  #bytes = 0;
  constructor(expected: Digest) {
    this.#expected = expected;
    this.#hash = createHash(expected.algorithm);
  }
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.byteLength;
  }
  get bytes(): number {
    return this.#bytes;
  }
  /** Finishes the hash; call once. */
  matches(): { ok: boolean; actual: string } {
    const actual = `${this.#expected.algorithm}:${this.#hash.digest('hex')}`;
    return { ok: actual === this.#expected.value, actual };
  }
}
