import { connect, type PeerCertificate } from 'node:tls';
import { isIP } from 'node:net';

/** What a TLS server presented: enough to judge trust and expiry without sending anything. */
export interface TlsFacts {
  /** The chain verifies with the given CA (or the system's) and names the host. */
  trusted: boolean;
  /** Why it does not verify (e.g. CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE), when it does not. */
  verifyError: string | null;
  subject: string;
  issuer: string;
  validFrom: Date;
  validTo: Date;
}

/** The server could not be reached (refused, unknown host, no answer in time). */
export class TlsUnreachable extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
  }
}

const name = (x: PeerCertificate['subject'] | undefined): string => (x?.CN ? `CN=${x.CN}` : Object.entries(x ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(', '));

/**
 * Opens a TLS connection, reads the server's certificate and closes: nothing
 * is sent beyond the handshake. Verification is done here rather than by the
 * handshake, so that an expired or untrusted certificate is described instead
 * of only refused.
 */
export function peerCertificate(host: string, port: number, opts: { ca?: string | Buffer; timeoutMs?: number } = {}): Promise<TlsFacts> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      ...(isIP(host) ? {} : { servername: host }),
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      rejectUnauthorized: false,
      timeout: opts.timeoutMs ?? 10_000,
    });
    const done = (fn: () => void) => {
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      fn();
    };
    socket.once('secureConnect', () => {
      const c = socket.getPeerCertificate();
      const err = socket.authorizationError;
      done(() => {
        if (!c || !c.valid_to) {
          reject(new TlsUnreachable(`${host}:${port} presented no certificate`, 'NO_CERT'));
          return;
        }
        resolve({
          trusted: socket.authorized,
          verifyError: err ? String((err as { code?: string }).code ?? err) : null,
          subject: name(c.subject),
          issuer: name(c.issuer),
          validFrom: new Date(c.valid_from),
          validTo: new Date(c.valid_to),
        });
      });
    });
    socket.once('timeout', () => done(() => reject(new TlsUnreachable(`no answer from ${host}:${port} in time`, 'ETIMEDOUT'))));
    socket.once('error', (e: NodeJS.ErrnoException) => done(() => reject(new TlsUnreachable(`cannot reach ${host}:${port}: ${e.code ?? e.message}`, e.code ?? 'ERROR'))));
  });
}
