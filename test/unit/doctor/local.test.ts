import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgeCertificate, judgeNodes } from '../../../src/doctor/local.js';
import { peerCertificate, TlsUnreachable, type TlsFacts } from '../../../src/remote/tls.js';
import { startTlsServer, type TestTlsServer } from '../../support/tls-server.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const cert = (validTo: string, over: Partial<TlsFacts> = {}): TlsFacts => ({
  trusted: true,
  verifyError: null,
  subject: 'CN=registry.cluster.enssib.fr',
  issuer: 'CN=enssib CA',
  validFrom: new Date('2026-01-01T00:00:00Z'),
  validTo: new Date(validTo),
  ...over,
});
const judge = (t: TlsFacts) => judgeCertificate('registry', 'registry', 'registry.cluster.enssib.fr:5000', t, "the inventory's CA", NOW).map((f) => `${f.severity}: ${f.found}`);

describe('certificates', () => {
  it('valid for long: OK; under 30 days: WARN; expired: FAIL (and not also "untrusted"); another CA: FAIL', () => {
    expect(judge(cert('2026-12-01T00:00:00Z'))).toEqual(["ok: registry.cluster.enssib.fr:5000 trusted with the inventory's CA; certificate valid until 2026-12-01 (183 days)"]);
    expect(judge(cert('2026-06-20T00:00:00Z'))).toEqual(['warn: the certificate of registry.cluster.enssib.fr:5000 expires on 2026-06-20 (in 19 days)']);
    expect(judge(cert('2026-05-01T00:00:00Z', { trusted: false, verifyError: 'CERT_HAS_EXPIRED' }))).toEqual([
      'fail: the certificate of registry.cluster.enssib.fr:5000 (CN=registry.cluster.enssib.fr) expired on 2026-05-01',
    ]);
    expect(judge(cert('2026-12-01T00:00:00Z', { trusted: false, verifyError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }))).toEqual([
      "fail: the certificate of registry.cluster.enssib.fr:5000 (CN=registry.cluster.enssib.fr, issued by CN=enssib CA) does not verify with the inventory's CA: UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    ]);
  });
});

describe('nodes', () => {
  it('every inventory worker Ready; a NotReady one, a missing one, one the inventory does not know', () => {
    const fs = judgeNodes(['node01', 'node02', 'node03'], ['data1', 'data2', 'node01', 'node02', 'node03'], [
      { name: 'data1', ready: 'True', message: '' },
      { name: 'node01', ready: 'True', message: '' },
      { name: 'node02', ready: 'False', message: 'container runtime network not ready' },
      { name: 'node09', ready: 'True', message: '' },
    ]);
    expect(fs.map((f) => `${f.severity} ${f.host}: ${f.found}`)).toEqual([
      'ok node01: node node01 Ready',
      'fail node02: node node02 is not Ready (Ready=False: container runtime network not ready)',
      'fail node03: node03 is not a node of the cluster',
      'warn node09: node node09 is in the cluster but not in the inventory',
    ]);
  });
});

describe('the TLS probe on loopback (certificates made by openssl)', () => {
  let good: TestTlsServer;
  let expired: TestTlsServer;
  beforeAll(async () => {
    [good, expired] = await Promise.all([startTlsServer(90), startTlsServer(-1)]);
  });
  afterAll(async () => {
    await Promise.all([good.close(), expired.close()]);
  });

  it('reads trust and expiry without refusing the handshake', async () => {
    const ok = await peerCertificate('127.0.0.1', good.port, { ca: readFileSync(good.caFile) });
    expect(ok).toMatchObject({ trusted: true, verifyError: null, subject: 'CN=127.0.0.1', issuer: 'CN=ca' });
    expect(Math.round((ok.validTo.getTime() - Date.now()) / 86_400_000)).toBe(90);
    const other = await peerCertificate('127.0.0.1', good.port, { ca: readFileSync(good.otherCaFile) });
    expect(other.trusted).toBe(false);
    expect(other.verifyError).toMatch(/UNABLE_TO_VERIFY|SELF_SIGNED|unable/i);
    const old = await peerCertificate('127.0.0.1', expired.port, { ca: readFileSync(expired.caFile) });
    expect(old).toMatchObject({ trusted: false, verifyError: 'CERT_HAS_EXPIRED' });
    expect(judgeCertificate('registry', 'registry', `127.0.0.1:${expired.port}`, old, 'the CA', new Date()).map((f) => f.severity)).toEqual(['fail']);
  });

  it('a closed port or a server that never answers is "unreachable", not a certificate problem', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(peerCertificate('127.0.0.1', port)).rejects.toThrow(TlsUnreachable);
    const mute = createServer(() => undefined);
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const mutePort = (mute.address() as { port: number }).port;
    await expect(peerCertificate('127.0.0.1', mutePort, { timeoutMs: 300 })).rejects.toThrow(/no answer from 127.0.0.1:\d+ in time/);
    mute.close();
  });
});
