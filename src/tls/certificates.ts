// A private CA and the server certificate it signs, for the mirror's TLS listener (DNS-spoof mode):
// ECDSA P-256 keys from node:crypto, X.509 v3 certificates encoded by hand (see der.ts), checked by
// Go's crypto/x509 (containerd, podman, skopeo) and OpenSSL (curl) in the client tests.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  boolean,
  children,
  explicit,
  implicitPrimitive,
  namedBits,
  objectIdentifier,
  octetString,
  readElement,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
} from './der.ts';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

// RFC 5280 4.2.1.3 bit numbers.
const DIGITAL_SIGNATURE = 0;
const KEY_CERT_SIGN = 5;
const CRL_SIGN = 6;

const DAY_MS = 86_400_000;
/** Clocks of nodes and mirror disagree a little; a certificate valid "from now" would fail on some. */
const BACKDATE_MS = 3_600_000;

export interface Issued {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM PKCS#8 private key. */
  readonly key: string;
}

export interface CertificateAuthority extends Issued {
  readonly x509: X509Certificate;
  readonly privateKey: KeyObject;
}

export interface ServerCertificateOptions {
  /** DNS names and IP addresses (v4 or v6) the certificate is valid for; the first is its common name. */
  readonly names: readonly string[];
  readonly validDays: number;
  readonly now?: Date;
}

/** A new self-signed CA that may sign server certificates only (path length 0). */
export function createCertificateAuthority(options: { commonName: string; validDays: number; now?: Date }): CertificateAuthority {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const subject = distinguishedName(options.commonName);
  const keyId = keyIdentifier(spki);
  const der = signCertificate({
    issuer: subject,
    subject,
    spki,
    now: options.now ?? new Date(),
    validDays: options.validDays,
    extensions: [
      extension(OID.basicConstraints, true, sequence(boolean(true), smallInteger(0))),
      extension(OID.keyUsage, true, namedBits([KEY_CERT_SIGN, CRL_SIGN])),
      extension(OID.subjectKeyIdentifier, false, octetString(keyId)),
    ],
    signer: privateKey,
  });
  const cert = pem('CERTIFICATE', der);
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, x509: new X509Certificate(cert), privateKey };
}

/** Reads a CA written earlier; throws when the key does not belong to the certificate or it is no CA. */
export function loadCertificateAuthority(cert: string, key: string): CertificateAuthority {
  const x509 = new X509Certificate(cert);
  const privateKey = createPrivateKey(key);
  if (!x509.ca) throw new Error('the certificate is not a CA certificate');
  if (!x509.checkPrivateKey(privateKey)) throw new Error('the CA key does not belong to the CA certificate');
  return { cert, key, x509, privateKey };
}

/** A server certificate for `names`, signed by `ca`, with a fresh key. */
export function issueServerCertificate(ca: CertificateAuthority, options: ServerCertificateOptions): Issued {
  if (options.names.length === 0) throw new Error('a server certificate needs at least one name');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const caSpki = ca.x509.publicKey.export({ type: 'spki', format: 'der' });
  const altNames = options.names.map((name) => (isIP(name) ? implicitPrimitive(7, ipBytes(name)) : implicitPrimitive(2, Buffer.from(name, 'ascii'))));
  const der = signCertificate({
    issuer: subjectOf(ca.x509),
    subject: distinguishedName(options.names[0]!),
    spki,
    now: options.now ?? new Date(),
    validDays: options.validDays,
    extensions: [
      extension(OID.basicConstraints, true, sequence()),
      extension(OID.keyUsage, true, namedBits([DIGITAL_SIGNATURE])),
      extension(OID.extKeyUsage, false, sequence(objectIdentifier(OID.serverAuth))),
      extension(OID.subjectAltName, false, sequence(...altNames)),
      extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spki))),
      extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyIdentifier(caSpki)))),
    ],
    signer: ca.privateKey,
  });
  return { cert: pem('CERTIFICATE', der), key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

interface Unsigned {
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly spki: Buffer;
  readonly now: Date;
  readonly validDays: number;
  readonly extensions: readonly Buffer[];
  readonly signer: KeyObject;
}

function signCertificate(c: Unsigned): Buffer {
  const algorithm = sequence(objectIdentifier(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // positive, as RFC 5280 requires
  const notBefore = new Date(c.now.getTime() - BACKDATE_MS);
  const notAfter = new Date(c.now.getTime() + c.validDays * DAY_MS);
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serial),
    algorithm,
    c.issuer,
    sequence(time(notBefore), time(notAfter)),
    c.subject,
    c.spki,
    explicit(3, sequence(...c.extensions)),
  );
  // EC keys sign to the DER ECDSA-Sig-Value that X.509 expects.
  return sequence(tbs, algorithm, bitString(sign('sha256', tbs, c.signer)));
}

function distinguishedName(commonName: string): Buffer {
  const attribute = (oid: string, value: string) => set(sequence(objectIdentifier(oid), utf8String(value)));
  return sequence(attribute(OID.organization, 'ocimirror'), attribute(OID.commonName, commonName.slice(0, 64)));
}

/** The issuer of a certificate must repeat its CA's subject byte for byte: copy it from the CA's DER. */
function subjectOf(cert: X509Certificate): Buffer {
  const der = cert.raw;
  const tbs = children(der, readElement(der, 0))[0];
  if (!tbs) throw new Error('CA certificate has no TBSCertificate');
  const fields = children(der, tbs);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version is optional
  const subject = fields[offset + 4];
  if (!subject || subject.tag !== 0x30) throw new Error('CA certificate has no subject');
  return Buffer.from(der.subarray(subject.start, subject.end));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(objectIdentifier(oid), boolean(true), octetString(value)) : sequence(objectIdentifier(oid), octetString(value));
}

/** RFC 5280 4.2.1.2 allows any method that yields unique values; SHA-1 of the whole SPKI is one. */
function keyIdentifier(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address. */
export function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  if (isIP(ip) !== 6) throw new Error(`"${ip}" is not an IP address`);
  let text = ip.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a = 0, b = 0, c = 0, d = 0] = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
