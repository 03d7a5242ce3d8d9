import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A TLS server on loopback with a certificate from a test CA made by openssl:
 * `days` sets the certificate's validity (-1: expired yesterday). It completes
 * handshakes and closes; nothing else. For the certificate checks.
 */
export interface TestTlsServer {
  port: number;
  caFile: string;
  /** A CA that did not sign the certificate. */
  otherCaFile: string;
  /** The server's certificate and key (PEM), to serve the same elsewhere. */
  certFile: string;
  keyFile: string;
  close(): Promise<void>;
}

function ca(dir: string, name: string): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj', `/CN=${name}`, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`)], { stdio: 'ignore' });
}

export async function startTlsServer(days: number): Promise<TestTlsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-tls-'));
  ca(dir, 'ca');
  ca(dir, 'other-ca');
  execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr')], { stdio: 'ignore' });
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  execFileSync(
    'openssl',
    ['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', String(days), '-extfile', join(dir, 'ext'), '-out', join(dir, 'server.crt')],
    { stdio: 'ignore' },
  );
  const server: Server = createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')) }, (s) => s.end());
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    caFile: join(dir, 'ca.crt'),
    otherCaFile: join(dir, 'other-ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
