import { describe, expect, it } from 'vitest';
import { CHECK_IDS, changes, exitCodeOf, findingsTable, hostProbes, parseList, parseWatch, summaryLine } from '../../../src/doctor/usecases.js';
import { probePlan } from '../../../src/doctor/gather.js';
import { ok, problem, couldNotRun } from '../../../src/engine/findings.js';
import { runPlan } from '../../../src/engine/runner.js';
import { ConnectionError, UsageError } from '../../../src/errors.js';
import { parseSnapshots } from '../../../src/storage/lvm.js';
import { enssib } from '../../support/cli.js';
import { fakePool } from '../../support/fake-hosts.js';
import { lvsJson, site } from './site.js';

const HOSTS = ['data1', 'data2', 'node01', 'node02'];

describe('doctor options', () => {
  it('--host and --only: comma-separated and repeated, deduplicated', () => {
    expect(parseList('--host', ['node01,node02', 'node01'], HOSTS, 'host')).toEqual(['node01', 'node02']);
    expect(parseList('--only', 'paths, mtu', CHECK_IDS, 'check')).toEqual(['paths', 'mtu']);
    expect(parseList('--host', undefined, HOSTS, 'host')).toBeNull();
  });

  it.each([
    [[''], /^--host is empty$/],
    [['node01,'], /^--host "node01," has an empty host name$/],
    [[',,'], /^--host is empty$/],
    [['node01', ''], /^--host "" has an empty host name$/],
    [['node99'], /--host: no host "node99"/],
    [['node01;rm -rf /'], /--host: no host "node01;rm -rf \/"/],
    [['$(reboot)'], /--host: no host "\$\(reboot\)"/],
    [['node01\u001b[2J'], /--host: no host "node01\\u001b\[2J"/],
    [['NODE01'], /--host: no host "NODE01"/],
  ])('--host %j is refused before anything runs', (raw, msg) => {
    expect(() => parseList('--host', raw, HOSTS, 'host')).toThrow(UsageError);
    expect(() => parseList('--host', raw, HOSTS, 'host')).toThrow(msg);
  });

  it('--only names checks; --watch takes 1 to 86400 seconds', () => {
    expect(() => parseList('--only', ['drbd', 'dns'], CHECK_IDS, 'check')).toThrow(/--only: no check "dns"/);
    expect(() => parseList('--only', ['`id`'], CHECK_IDS, 'check')).toThrow(/no check "`id`"/);
    expect(parseWatch('5')).toBe(5);
    expect(parseWatch(undefined)).toBeNull();
    for (const bad of ['0', '-1', '1.5', '86401', '5s', '', ' 5', '999999']) expect(() => parseWatch(bad)).toThrow(UsageError);
  });
});

describe('which probes run where', () => {
  it('the system probe first (it opens the connection), the clock last, each probe once; storage and worker probes where they belong', () => {
    const all = hostProbes(site, { hosts: HOSTS, checks: [...CHECK_IDS] });
    const names = (h: string) => (all.get(h) ?? []).map((p) => p.name);
    expect(names('data1')).toEqual(['system', 'drbd-role', 'drbd-cstate', 'drbd-dstate', 'lvs', 'scst-file', 'scst-running', 'vgs', 'ip-addr', 'clock']);
    expect(names('node01')).toEqual(['system', 'iscsi-sessions', 'multipath', 'ip-addr', 'ip-route', 'nfs', 'registry-tls', 'clock']);
    const some = hostProbes(site, { hosts: ['node02'], checks: ['pod-routes', 'gateway'] });
    expect([...some.keys()]).toEqual(['node02']);
    expect((some.get('node02') ?? []).map((p) => p.name)).toEqual(['system', 'ip-route']);
    expect(hostProbes(site, { hosts: HOSTS, checks: ['registry', 'kubernetes'] }).size).toBe(0);
    expect(hostProbes(site, { hosts: ['data1'], checks: ['paths'] }).get('data1')?.map((p) => p.name)).toEqual(['system']);
  });
});

describe('the report', () => {
  const fs = [ok('ssh', 'node01', 'reachable'), problem('fail', 'mtu', 'node02', 'eth1 has MTU 1500', 'frames dropped', 'ip link set mtu 9000'), couldNotRun('registry', 'registry', 'cannot reach it'), problem('warn', 'lvm', 'data1', 'snapshot', 'fills', 'lvremove')];

  it('one table, most severe first; a summary; exit 1 only on a FAIL', () => {
    const lines = findingsTable(fs, (h, r) => [h.join('|'), ...r.map((x) => x.join('|'))]);
    expect(lines).toEqual([
      'STATUS|HOST|CHECK|FINDING|WHY IT MATTERS|FIX',
      'FAIL|node02|mtu|eth1 has MTU 1500|frames dropped|ip link set mtu 9000',
      'WARN|data1|lvm|snapshot|fills|lvremove',
      'UNKNOWN|registry|registry|could not run: cannot reach it|-|-',
      'OK|node01|ssh|reachable|-|-',
    ]);
    expect(summaryLine(fs, 1234)).toBe('doctor: 1 FAIL, 1 WARN, 1 could not run, 1 OK (1.2 s)');
    expect(exitCodeOf(fs)).toBe(1);
    expect(exitCodeOf(fs.filter((f) => f.severity !== 'fail'))).toBe(0);
  });

  it('--watch prints what changed between two rounds, by check and host', () => {
    const after = [problem('fail', 'ssh', 'node01', 'connection refused', 'x', 'y'), ok('mtu', 'node02', 'eth1 MTU 9000'), couldNotRun('registry', 'registry', 'cannot reach it'), problem('warn', 'lvm', 'data1', 'snapshot', 'fills', 'lvremove')];
    expect(changes(fs, after, new Date(2026, 0, 1, 12, 30, 5))).toEqual(['12:30:05  FAIL     node01  ssh  connection refused  → y', '12:30:05  OK       node02  mtu  eth1 MTU 9000']);
    expect(changes(after, after, new Date())).toEqual([]);
    expect(changes(after, after.slice(0, 3), new Date(2026, 0, 1, 12, 30, 6))).toEqual(['12:30:06  GONE     data1  lvm']);
  });
});

describe('snapshots in an lvs report', () => {
  it('reads origin, use and validity; plain LVs are not snapshots', () => {
    const text = lvsJson([{ name: 'mail' }, { name: 's1', attr: 'swi-a-s---', origin: 'mail', pct: '3.20' }, { name: 's2', attr: 'Swi-I-s---', origin: 'ldap', pct: '100.00' }, { name: 's3', attr: 'swi---s---', origin: 'www' }]);
    expect(parseSnapshots(text)).toEqual([
      { name: 's1', origin: 'mail', usedPercent: 3.2, invalid: false, active: true },
      { name: 's2', origin: 'ldap', usedPercent: 100, invalid: true, active: false },
      { name: 's3', origin: 'www', usedPercent: null, invalid: false, active: false },
    ]);
  });
});

describe('the CLI (bundled inventory; nothing is contacted)', () => {
  it.each([
    [['--host', ''], '--host is empty'],
    [['--host', 'data1,,data2'], '--host "data1,,data2" has an empty host name'],
    [['--host', 'node01;reboot'], 'no host "node01;reboot"'],
    [['--only', 'paths,bogus'], 'no check "bogus"'],
    [['--only', ''], '--only is empty'],
    [['--watch', '0'], '--watch "0"'],
  ])('doctor %j: exit 2, a clear message, no stack', async (args, msg) => {
    const r = await enssib(['doctor', ...args], { env: { ENSSIB_SSH_CONFIG: '/nonexistent/ssh_config' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(msg);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a dry run lists the probes of the chosen checks on the chosen hosts', async () => {
    const r = await enssib(['doctor', '--dry-run', '--host', 'node01', '--host', 'data1', '--only', 'paths,mtu'], { env: { ENSSIB_SSH_CONFIG: '/nonexistent/ssh_config' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('nothing was contacted');
    // Each probe under its time limit (timeout: TERM after 10 s, KILL 2 s later).
    const t = 'timeout --verbose -k 2 10';
    expect(r.stdout).toMatch(new RegExp(`node01\\n\\s+check: ${t} sh -c .*\\n\\s+check: ${t} iscsiadm -m session -P 3\\n\\s+check: ${t} multipath -ll\\n\\s+check: ${t} ip -j addr show`));
    expect(r.stdout).toMatch(new RegExp(`data1\\n\\s+check: ${t} sh -c .*\\n\\s+check: ${t} ip -j addr show\\n`));
    expect(r.stdout).not.toContain('node02');
  });
});

describe('the gathering: the engine\'s batched probes, read-only', () => {
  it('one probe batch per host, each probe under its time limit; a host that cannot be reached is a finding, the others are read', async () => {
    const pool = fakePool((host, argv) => (host === 'node02' ? new ConnectionError('node02', 'connection refused') : { stdout: argv.join(' ') }));
    const batches: string[] = [];
    const get = pool.get;
    pool.get = (name: string) => {
      const h = get(name);
      const probe = h.probe.bind(h);
      h.probe = (checks, opts) => {
        batches.push(`${name}: ${checks.length}`);
        return probe(checks, opts);
      };
      return h;
    };
    const probes = hostProbes(site, { hosts: HOSTS, checks: [...CHECK_IDS] });
    const report = await runPlan(probePlan(probes), { mode: 'apply', concurrency: 4, hosts: pool });
    expect(batches.sort()).toEqual(['data1: 10', 'data2: 10', 'node01: 8', 'node02: 8']);
    expect(pool.host('node01').calls.every((c) => c.slice(0, 5).join(' ') === 'timeout --verbose -k 2 10')).toBe(true);
    expect(report.phases[0]?.hosts.map((h) => `${h.host} ${h.status}`)).toEqual(['data1 unchanged', 'data2 unchanged', 'node01 unchanged', 'node02 failed']);
    expect(report.findings.map((f) => `${f.severity} ${f.host} ${f.found}`)).toEqual(['error node02 connection refused']);
  });
});
