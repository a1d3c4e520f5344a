// The CA and server certificate of `ocimirror tls init`, checked by node's X509Certificate (OpenSSL).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { createCertificateAuthority, ipBytes, issueServerCertificate } from '../../src/tls/certificates.ts';
import { namedBits, objectIdentifier, readElement, time, tlv, unsignedInteger } from '../../src/tls/der.ts';
import { certificateNames, hostWithoutPort, initTls, tlsPaths } from '../../src/tls/init.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('DER encoding', () => {
  it('encodes short and long lengths', () => {
    expect(hex(tlv(0x04, Buffer.alloc(3)))).toBe('0403000000');
    expect(hex(tlv(0x04, Buffer.alloc(200)).subarray(0, 3))).toBe('0481c8');
    expect(hex(tlv(0x04, Buffer.alloc(300)).subarray(0, 4))).toBe('0482012c');
    const long = tlv(0x30, Buffer.alloc(300));
    expect(readElement(long, 0)).toEqual({ tag: 0x30, start: 0, contentStart: 4, end: 304 });
  });

  it('encodes integers, object identifiers, named bits and times as X.690 says', () => {
    expect(hex(unsignedInteger(Buffer.from([0x00, 0x00, 0x7f])))).toBe('02017f');
    expect(hex(unsignedInteger(Buffer.from([0x80])))).toBe('02020080');
    expect(hex(objectIdentifier('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302');
    expect(hex(namedBits([0]))).toBe('03020780'); // digitalSignature: 7 unused bits
    expect(hex(namedBits([5, 6]))).toBe('03020106'); // keyCertSign, cRLSign
    expect(time(new Date('2030-01-02T03:04:05Z')).toString('latin1')).toBe('\x17\x0d300102030405Z');
    expect(time(new Date('2050-01-02T03:04:05Z')).toString('latin1')).toBe('\x18\x0f20500102030405Z');
  });

  it('writes IPv4 and IPv6 addresses as 4 and 16 bytes', () => {
    expect(hex(ipBytes('192.0.2.1'))).toBe('c0000201');
    expect(hex(ipBytes('::1'))).toBe('00000000000000000000000000000001');
    expect(hex(ipBytes('2001:db8::7:0'))).toBe('20010db8000000000000000000070000');
    expect(hex(ipBytes('::ffff:10.1.2.3'))).toBe('00000000000000000000ffff0a010203');
  });
});

describe('certificates', () => {
  const ca = createCertificateAuthority({ commonName: 'ocimirror CA test', validDays: 3650 });
  const server = issueServerCertificate(ca, { names: ['mirror.lab', 'registry-1.docker.io', '192.0.2.10', '::1'], validDays: 30 });
  const cert = new X509Certificate(server.cert);

  it('makes a CA certificate that signed itself', () => {
    expect(ca.x509.ca).toBe(true);
    expect(ca.x509.verify(ca.x509.publicKey)).toBe(true);
    expect(ca.x509.subject).toBe('O=ocimirror\nCN=ocimirror CA test');
  });

  it('issues a server certificate the CA verifies, for every name and address', () => {
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca.x509)).toBe(true);
    expect(cert.verify(ca.x509.publicKey)).toBe(true);
    expect(cert.issuer).toBe(ca.x509.subject);
    expect(cert.subject).toBe('O=ocimirror\nCN=mirror.lab');
    expect(cert.checkHost('registry-1.docker.io')).toBe('registry-1.docker.io');
    expect(cert.checkHost('mirror.lab')).toBe('mirror.lab');
    expect(cert.checkHost('ghcr.io')).toBeUndefined();
    expect(cert.checkIP('192.0.2.10')).toBe('192.0.2.10');
    expect(cert.checkIP('::1')).toBe('::1');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.checkPrivateKey(createPrivateKey(server.key))).toBe(true);
  });

  it('is valid from an hour ago for the days asked', () => {
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    expect(Date.now() - from).toBeGreaterThan(59 * 60_000);
    expect(Math.round((to - Date.now()) / 86_400_000)).toBe(30);
  });
});

describe('certificateNames', () => {
  const upstreams = parseConfig({}, { env: {} }).upstreams;

  it('puts the mirror names first, then every alias without port, then the loopback names', () => {
    const lab = parseConfig({ upstreams: [{ name: 'lab', url: 'http://10.0.0.5:5000', aliases: ['lab.example:5000', '10.0.0.5:5000', '[fd00::5]:5000'] }] }, { env: {} }).upstreams;
    expect(certificateNames(lab, { names: ['Mirror.Lab'], ips: ['192.0.2.10'] })).toEqual([
      'mirror.lab',
      '192.0.2.10',
      'lab.example',
      '10.0.0.5',
      'fd00::5',
      'localhost',
      '127.0.0.1',
      '::1',
    ]);
    const names = certificateNames(upstreams);
    for (const spoofed of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.k8s.io', 'k8s.gcr.io', 'ghcr.io', 'quay.io', 'gcr.io']) {
      expect(names).toContain(spoofed);
    }
  });

  it('refuses names and addresses that are none', () => {
    expect(() => certificateNames(upstreams, { names: ['not a name'] })).toThrow(/DNS name/);
    expect(() => certificateNames(upstreams, { ips: ['300.1.1.1'] })).toThrow(/IP address/);
  });

  it('drops ports from host names', () => {
    expect(hostWithoutPort('registry:5000')).toBe('registry');
    expect(hostWithoutPort('[::1]:5000')).toBe('::1');
    expect(hostWithoutPort('ghcr.io')).toBe('ghcr.io');
  });
});

describe('initTls', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir('tls-init-test');
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('writes the CA and server pair under <dataDir>/tls, keys mode 0600', async () => {
    const config = parseConfig({ dataDir: dir }, { env: {} });
    const paths = tlsPaths(config);
    expect(paths).toEqual({
      caCert: join(dir, 'tls', 'ca.crt'),
      caKey: join(dir, 'tls', 'ca.key'),
      serverCert: join(dir, 'tls', 'server.crt'),
      serverKey: join(dir, 'tls', 'server.key'),
    });
    const result = await initTls({ paths, names: certificateNames(config.upstreams) });
    expect(result.caCreated).toBe(true);
    for (const key of [paths.caKey, paths.serverKey]) expect((await stat(key)).mode & 0o777).toBe(0o600);
    for (const cert of [paths.caCert, paths.serverCert]) expect((await stat(cert)).mode & 0o777).toBe(0o644);
    const server = new X509Certificate(await readFile(paths.serverCert));
    expect(server.verify(new X509Certificate(await readFile(paths.caCert)).publicKey)).toBe(true);
    expect(server.checkHost('registry-1.docker.io')).toBeTruthy();
  });

  it('keeps the CA when run again, unless asked for a new one', async () => {
    const config = parseConfig({ dataDir: dir, upstreams: [{ name: 'lab', url: 'https://lab.example' }] }, { env: {} });
    const paths = tlsPaths(config);
    const before = await readFile(paths.caCert, 'utf8');
    const again = await initTls({ paths, names: certificateNames(config.upstreams) });
    expect(again.caCreated).toBe(false);
    expect(await readFile(paths.caCert, 'utf8')).toBe(before);
    const server = new X509Certificate(await readFile(paths.serverCert));
    expect(server.checkHost('lab.example')).toBe('lab.example');
    expect(server.checkHost('docker.io')).toBeUndefined();
    expect(server.verify(new X509Certificate(before).publicKey)).toBe(true);

    const fresh = await initTls({ paths, names: ['lab.example'], newCa: true });
    expect(fresh.caCreated).toBe(true);
    expect(await readFile(paths.caCert, 'utf8')).not.toBe(before);
  });

  it('refuses a CA whose key does not match', async () => {
    const paths = tlsPaths(parseConfig({ dataDir: dir }, { env: {} }));
    await writeFile(paths.caKey, createCertificateAuthority({ commonName: 'other', validDays: 1 }).key);
    await expect(initTls({ paths, names: ['x.example'] })).rejects.toThrow(/--new-ca/);
  });

  it('writes the server pair where tls.certFile and tls.keyFile say', () => {
    const config = parseConfig({ dataDir: dir, tls: { listen: ':443', certFile: '/etc/ocimirror/tls.crt', keyFile: '/etc/ocimirror/tls.key' } }, { env: {} });
    expect(config.tls.listen).toEqual([':443']);
    expect(tlsPaths(config)).toMatchObject({ caCert: join(dir, 'tls', 'ca.crt'), serverCert: '/etc/ocimirror/tls.crt', serverKey: '/etc/ocimirror/tls.key' });
  });
});
