import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.error?.message ?? ''}${r.stderr}`);
}

/** A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate, in a temp dir. */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'res-tls-'));
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=redis-es-sync test CA',
  ]);
  for (const who of ['server', 'client']) {
    openssl(dir, [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${who}.key`,
      '-out',
      `${who}.csr`,
      '-subj',
      `/CN=${who === 'server' ? 'localhost' : 'redis-es-sync'}`,
    ]);
    const ext = who === 'server' ? ['-extfile', 'server.ext'] : [];
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${who}.crt`,
      '-days',
      '2',
      ...ext,
    ]);
  }
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}

/** redis-server arguments for a TLS port that requires client certificates signed by the test CA. */
export function redisTlsArgs(certs: TestCerts, tlsPort: number): string[] {
  return [
    '--tls-port',
    String(tlsPort),
    '--tls-cert-file',
    certs.serverCert,
    '--tls-key-file',
    certs.serverKey,
    '--tls-ca-cert-file',
    certs.ca,
    '--tls-auth-clients',
    'yes',
  ];
}
