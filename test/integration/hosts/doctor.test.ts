import { chmodSync, copyFileSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../../src/engine/findings.js';
import { execa } from 'execa';
import { assertBuilt, BIN, enssib, type CliResult } from '../../support/cli.js';
import { startTlsServer, type TestTlsServer } from '../../support/tls-server.js';
import { volumeLab } from './volume-lab.js';

/**
 * `enssib doctor` over real OpenSSH (hosts lab) with stand-in storage
 * binaries and a stand-in `ip` (the containers' network is not the site's):
 * a healthy lab is all OK; seeded faults — a failed path, an interface at
 * MTU 1500, an SCST device with nv_cache 1, a missing pod route, an expired
 * registry certificate (a TLS server on loopback) — are reported exactly; a
 * lab without a registry or API server says those checks could not run; a
 * probe that hangs is stopped on its host and fails only its checks.
 * There is no API server here: the kubernetes check is given a kubeconfig
 * that does not exist, and says it could not run. The registry as the
 * workers reach it: in each worker's container (whose 127.0.0.1 is its own)
 * openssl s_server serves the test registry's certificate at the same port;
 * the lab image has no openssl, so this machine's (Debian 12, the image's
 * libssl3) is put among the stand-ins for the probe and those servers.
 */
const v = volumeLab();
const IP = join(import.meta.dirname, 'stand-ins', 'ip.sh');
const IP_STATE = '/var/lib/enssib-stand-in/ip';
const NO_KUBECONFIG = '/nonexistent/enssib-doctor/kubeconfig';
let good: TestTlsServer;
let expired: TestTlsServer;
const TLS_DIR = '/var/lib/enssib-doctor-tls';
const servers: { host: string; pid: string }[] = [];

/** The registry `s` as the workers (all but `except`) reach it: openssl s_server on their own 127.0.0.1, same port, same certificate. */
function serveOnWorkers(s: TestTlsServer, except: string[] = []): void {
  for (const w of hosts().filter((h) => h.worker && !except.includes(h.name))) {
    const dir = `${TLS_DIR}/${s.port}`;
    v.exec(w.name, `mkdir -p ${dir}`);
    v.writeFile(w.name, `${dir}/cert.pem`, readFileSync(s.certFile, 'utf8'));
    v.writeFile(w.name, `${dir}/key.pem`, readFileSync(s.keyFile, 'utf8'));
    const pid = v.exec(w.name, `/opt/enssib-stand-ins/bin/openssl s_server -accept 127.0.0.1:${s.port} -cert ${dir}/cert.pem -key ${dir}/key.pem -www -quiet </dev/null >/dev/null 2>&1 & echo $!`).trim();
    servers.push({ host: w.name, pid });
  }
}

interface Lab {
  name: string;
  address: string;
  worker: boolean;
  pods: string | null;
}
const hosts = (): Lab[] =>
  v.lab.inventory().hosts.map((h) => ({ name: h.name, address: h.address, worker: h.roles.includes('worker'), pods: h.podSubnet ?? null }));

function ipAddr(address: string, mtu: number): string {
  return JSON.stringify([
    { ifindex: 1, ifname: 'lo', mtu: 65536, operstate: 'UNKNOWN', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifindex: 2, ifname: 'eth1', mtu, operstate: 'UP', addr_info: [{ family: 'inet', local: address, prefixlen: 24 }] },
  ]);
}

function ipRoute(self: Lab, skip: string | null = null): string {
  return JSON.stringify([
    { dst: 'default', gateway: '10.66.6.10', dev: 'eth1' },
    { dst: '10.66.6.0/24', dev: 'eth1', protocol: 'kernel', scope: 'link', prefsrc: self.address },
    ...(self.pods ? [{ dst: self.pods, dev: 'cni0', protocol: 'kernel', scope: 'link' }] : []),
    ...hosts()
      .filter((h) => h.worker && h.name !== self.name && h.pods !== skip)
      .map((h) => ({ dst: h.pods, gateway: h.address, dev: 'eth1' })),
  ]);
}

/** Every host healthy: its cluster interface at MTU 9000, every pod route, both paths active, SCST safe. */
function heal(): void {
  for (const h of hosts()) {
    v.exec(h.name, `mkdir -p ${IP_STATE}; rm -f /var/lib/enssib-stand-in/iscsi/failed`);
    v.writeFile(h.name, `${IP_STATE}/addr.json`, ipAddr(h.address, 9000));
    if (h.worker) v.writeFile(h.name, `${IP_STATE}/route.json`, ipRoute(h));
  }
  for (const s of ['data1', 'data2']) v.exec(s, "sed -i 's/nv_cache 1/nv_cache 0/' /etc/scst.conf /var/lib/enssib-stand-in/scst.running");
}

function inventory(registry: string, ca: string): string {
  return v.lab.variant((t) => t.replace(/^registry: .*$/m, `registry: { host: '${registry}', ca: '${ca}' }`));
}

async function doctor(inv: string, args: string[] = []): Promise<{ r: CliResult; findings: Finding[] }> {
  const r = await enssib(['-i', inv, '--kubeconfig', NO_KUBECONFIG, 'doctor', '-o', 'json', ...args], { timeoutMs: 120_000 });
  const doc = JSON.parse(r.stdout || '{}') as { findings?: Finding[] };
  return { r, findings: doc.findings ?? [] };
}

const notOk = (fs: Finding[]) => fs.filter((f) => f.severity !== 'ok').map((f) => `${f.severity} ${f.host} ${f.check}`).sort();

beforeAll(async () => {
  assertBuilt();
  v.install();
  copyFileSync(IP, join(v.lab.standIns, 'ip'));
  chmodSync(join(v.lab.standIns, 'ip'), 0o755);
  v.reset();
  [good, expired] = await Promise.all([startTlsServer(90), startTlsServer(-1)]);
  copyFileSync('/usr/bin/openssl', join(v.lab.standIns, 'openssl'));
  serveOnWorkers(good);
  // node02 does not reach the expired registry: a seeded fault of the workers' registry check.
  serveOnWorkers(expired, ['node02']);
  const created = await v.enssib(['volume', 'create', 'mail', '10G']);
  expect(created.code, created.stdout + created.stderr).toBe(0);
  // What the kubelet does when a pod uses the volume: a session through each portal.
  for (const w of hosts().filter((h) => h.worker)) {
    for (const p of ['10.66.6.1:3260', '10.66.6.2:3260']) v.exec(w.name, `iscsiadm -m node -T iqn.2016-04.fr.enssib:mail -p ${p} --login >/dev/null`);
  }
  heal();
});

afterAll(async () => {
  v.uninstall();
  for (const { host, pid } of servers) v.exec(host, `kill ${pid} 2>/dev/null || true`);
  rmSync(join(v.lab.standIns, 'ip'), { force: true });
  rmSync(join(v.lab.standIns, 'openssl'), { force: true });
  for (const h of hosts()) v.exec(h.name, `rm -rf ${IP_STATE} ${TLS_DIR}`);
  await Promise.all([good?.close(), expired?.close()]);
});

describe('enssib doctor on the hosts lab', () => {
  it('a healthy lab: every check OK on every host; only the API server (absent here) could not run; exit 0', async () => {
    const { r, findings } = await doctor(inventory(`127.0.0.1:${good.port}`, good.caFile));
    expect(r.code, r.stderr).toBe(0);
    expect(notOk(findings)).toEqual(['unknown kubernetes kubernetes']);
    expect(findings.find((f) => f.check === 'kubernetes')?.found).toBe(`could not run: no kubeconfig at ${NO_KUBECONFIG} (from --kubeconfig); give one with --kubeconfig, KUBECONFIG or kubernetes.kubeconfig`);
    const rows = findings.map((f) => `${f.host} ${f.check}`);
    for (const h of hosts()) {
      for (const c of ['ssh', 'clock', 'mtu', ...(h.worker ? ['paths', 'gateway', 'pod-routes', 'nfs', 'registry-pull'] : ['drbd', 'targets', 'lvm'])]) expect(rows).toContain(`${h.name} ${c}`);
    }
    expect(findings.find((f) => f.host === 'node01' && f.check === 'paths')?.found).toBe('1 volume, each with 2 sessions and 2 active paths');
    expect(findings.find((f) => f.host === 'data2' && f.check === 'targets')?.found).toBe('devices nv_cache 0 and write_through 1, 1 enssib volume exported with its identity');
    expect(findings.find((f) => f.check === 'registry')?.found).toMatch(/^127\.0\.0\.1:\d+ trusted with the inventory's CA .*; certificate valid until .* \((89|90) days\)$/);
    expect(findings.find((f) => f.host === 'node02' && f.check === 'registry-pull')?.found).toMatch(/^127\.0\.0\.1:\d+ reached; certificate \(CN=127\.0\.0\.1\) trusted with the inventory's CA, valid until \d{4}-\d\d-\d\d$/);
  });

  it('seeded faults are reported exactly, nothing else; exit 1; the text table says why and the fix', async () => {
    // The path through data2's portal fails (the stand-in names disks by session number).
    v.exec('node01', `cd /var/lib/enssib-stand-in/iscsi && awk '$3 == "10.66.6.2:3260" {print $4}' sessions > failed`);
    v.writeFile('node02', `${IP_STATE}/addr.json`, ipAddr('10.66.6.12', 1500));
    v.exec('data2', "sed -i 's/nv_cache 0/nv_cache 1/' /etc/scst.conf /var/lib/enssib-stand-in/scst.running");
    const node03 = hosts().find((h) => h.name === 'node03') as Lab;
    v.writeFile('node03', `${IP_STATE}/route.json`, ipRoute(node03, '10.100.1.0/24'));
    try {
      const inv = inventory(`127.0.0.1:${expired.port}`, expired.caFile);
      const { r, findings } = await doctor(inv);
      expect(r.code, r.stderr).toBe(1);
      expect(notOk(findings)).toEqual([
        'fail data2 targets',
        'fail node01 paths',
        'fail node01 registry-pull',
        'fail node02 mtu',
        'fail node02 registry-pull',
        'fail node03 pod-routes',
        'fail node03 registry-pull',
        'fail registry registry',
        'unknown kubernetes kubernetes',
      ]);
      const found = (host: string, check: string) => findings.find((f) => f.host === host && f.check === check && f.severity !== 'ok')?.found;
      expect(found('node01', 'paths')).toMatch(/volume mail: map \S+ has 1 active path\(s\), expected 2 \(sd[a-z] failed faulty\)/);
      expect(found('node02', 'mtu')).toBe("eth1 (10.66.6.12) has MTU 1500; the cluster network's is 9000");
      expect(found('data2', 'targets')).toBe('SCST device mail: nv_cache 1 (/etc/scst.conf and in force); must be nv_cache 0, write_through 1');
      expect(found('node03', 'pod-routes')).toBe("no route to node01's pods 10.100.1.0/24 (via 10.66.6.11)");
      expect(found('registry', 'registry')).toMatch(/^the certificate of 127\.0\.0\.1:\d+ \(CN=127\.0\.0\.1\) expired on \d{4}-\d\d-\d\d$/);
      expect(found('node01', 'registry-pull')).toMatch(/^the registry 127\.0\.0\.1:\d+ \(CN=127\.0\.0\.1\) does not verify on node01 with the inventory's CA: certificate has expired$/);
      expect(found('node02', 'registry-pull')).toMatch(/^node02 cannot reach the registry 127\.0\.0\.1:\d+: Connection refused$/);

      const text = await enssib(['-i', inv, '--kubeconfig', NO_KUBECONFIG, 'doctor'], { timeoutMs: 120_000 });
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(/^STATUS\s+HOST\s+CHECK\s+FINDING\s+WHY IT MATTERS\s+FIX$/m);
      expect(text.stdout).toMatch(/^FAIL\s+node02\s+mtu\s+eth1 \(10\.66\.6\.12\) has MTU 1500.*ip link set dev eth1 mtu 9000 on node02/m);
      expect(text.stdout).toMatch(/^doctor: 8 FAIL, 0 WARN, 1 could not run, \d+ OK \(\d+\.\d s\)$/m);

      // --host and --only narrow the report to what was asked.
      const some = await doctor(inv, ['--host', 'node02,node03', '--only', 'mtu']);
      expect(some.r.code).toBe(1);
      expect(some.findings.map((f) => `${f.severity} ${f.host} ${f.check}`)).toEqual(['fail node02 mtu', 'ok node03 mtu']);
    } finally {
      heal();
    }
  });

  it('a probe that hangs (node03\'s routes, deaf to TERM) is stopped on the host: its checks fail with what hung, the rest is judged', async () => {
    v.exec('node03', `touch ${IP_STATE}/route.json.hang`);
    try {
      const started = Date.now();
      const { r, findings } = await doctor(inventory(`127.0.0.1:${good.port}`, good.caFile));
      const seconds = (Date.now() - started) / 1000;
      expect(r.code, r.stderr).toBe(1);
      expect(notOk(findings)).toEqual(['fail node03 gateway', 'fail node03 pod-routes', 'unknown kubernetes kubernetes']);
      const hung = findings.find((f) => f.host === 'node03' && f.check === 'gateway');
      expect(hung?.found).toBe('ip -j -4 route show table main did not finish within 10 s (stopped)');
      expect(hung?.fix).toMatch(/^On node03, see what waits/);
      // TERM at 10 s, KILL at 12 s, then the batch goes on: not the 300 s of the command timeout.
      expect(seconds).toBeGreaterThan(10);
      expect(seconds).toBeLessThan(40);
      expect(v.exec('node03', "pgrep -x sleep || echo none").trim()).toBe('none');
    } finally {
      v.exec('node03', `rm -f ${IP_STATE}/route.json.hang`);
    }
  });

  it('without a registry or API server the checks say they could not run and why (not a failure: exit 0)', async () => {
    const closed = createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((res) => closed.close(() => res()));
    const { r, findings } = await doctor(inventory(`127.0.0.1:${port}`, good.caFile), ['--only', 'registry,kubernetes,ssh']);
    expect(r.code, r.stderr).toBe(0);
    expect(notOk(findings)).toEqual(['unknown kubernetes kubernetes', 'unknown registry registry']);
    expect(findings.find((f) => f.check === 'registry')?.found).toBe(`could not run: cannot reach 127.0.0.1:${port}: ECONNREFUSED (is the registry running, and reachable from here?)`);
  });

  it('--watch prints what changed between rounds (a failover drill) and stops on Ctrl-C with 130', async () => {
    const inv = inventory(`127.0.0.1:${good.port}`, good.caFile);
    const child = execa('node', [BIN, '-i', inv, 'doctor', '--only', 'mtu', '--host', 'node02', '--watch', '1'], { env: { NO_COLOR: '1', CI: '1' }, reject: false, stdin: 'ignore' });
    let out = '';
    const seen = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`not seen: ${re} in ${out}`)), 60_000);
        const check = () => {
          if (re.test(out)) {
            clearTimeout(t);
            child.stdout?.off('data', onData);
            resolve();
          }
        };
        const onData = (b: Buffer) => {
          out += b.toString();
          check();
        };
        child.stdout?.on('data', onData);
        check();
      });
    try {
      await seen(/^OK\s+node02\s+mtu\s+eth1 \(10\.66\.6\.12\) MTU 9000\s/m);
      v.writeFile('node02', `${IP_STATE}/addr.json`, ipAddr('10.66.6.12', 1500));
      await seen(/^\d\d:\d\d:\d\d {2}FAIL {5}node02 {2}mtu {2}eth1 \(10\.66\.6\.12\) has MTU 1500; the cluster network's is 9000 {2}→ ip link set dev eth1 mtu 9000/m);
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode).toBe(130);
    } finally {
      child.kill('SIGKILL');
      heal();
    }
  });
});
