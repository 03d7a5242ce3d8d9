import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../../src/errors.js';
import { enssib } from '../../support/cli.js';
import { volumeLab } from './volume-lab.js';

/**
 * Bad input of `enssib node bootstrap` / `node check` over real OpenSSH (hosts
 * lab): the known_hosts entry of the worker holds another key than the one its
 * sshd presents. enssib refuses to connect, says which host and which line, and
 * never overrides the check — not even under an ssh config that says
 * `StrictHostKeyChecking no`. Nothing is changed on the host, and the
 * known_hosts file stays byte for byte — also while an earlier run's shared
 * connection to the host (made under the right known_hosts) is still open.
 */
const v = volumeLab();
const HOST = 'node03';
const MARK = '/run/enssib-host-key-mark';
/** What the bootstrap's first phases would write on the worker. */
const WRITTEN = ['/etc/iscsi/initiatorname.iscsi', '/etc/modules-load.d/enssib.conf', '/etc/sysctl.d/90-enssib.conf', '/etc/apt/sources.list.d/enssib-kubernetes.list', '/etc/systemd/network/05-enssib-cluster.network'];

let dir = '';
let knownHosts = '';
let sshConfig = '';
let before = '';

/** The lab's known_hosts with node03's line carrying a freshly made key (what a reinstalled host, or an impostor, would present). */
function wrongKnownHosts(): string {
  const port = (JSON.parse(readFileSync(join(v.lab.state, 'hosts.json'), 'utf8')) as { name: string; port: number }[]).find((h) => h.name === HOST)?.port;
  const keyDir = mkdtempSync(join(tmpdir(), 'enssib-otherkey-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'k')]);
  const other = readFileSync(join(keyDir, 'k.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const lines = readFileSync(join(v.lab.state, 'known_hosts'), 'utf8').split('\n');
  const mine = lines.filter((l) => l.startsWith(`[127.0.0.1]:${port} `));
  expect(mine.length).toBeGreaterThan(0);
  return lines.map((l) => (l.startsWith(`[127.0.0.1]:${port} `) ? `[127.0.0.1]:${port} ${other}` : l)).join('\n');
}

const run = (args: string[]) => enssib(['--inventory', join(dir, 'inventory.yaml'), ...args], { timeoutMs: 120_000 });

beforeAll(async () => {
  const inv = v.lab.variant((t) => `${t}nodes:\n  interface: eth1\n  apt: { url: "http://127.0.0.1:1/k8s/", key: k8s.gpg }\n`);
  dir = dirname(inv);
  writeFileSync(join(dir, 'k8s.gpg'), 'KEY');
  mkdirSync(join(dir, 'certs'));
  writeFileSync(join(dir, 'certs', 'enssib-ca.crt'), '-----BEGIN CERTIFICATE-----\n');
  // an earlier run under the lab's own (right) known_hosts leaves its shared connection to node03 open (ControlPersist):
  // a run under other trust settings must not join it, since a client joining a master checks no host key
  const earlier = await run(['node', 'check', HOST]);
  expect(earlier.stderr + earlier.stdout).toContain(`${HOST} differs in`);
  knownHosts = join(dir, 'known_hosts');
  before = wrongKnownHosts();
  writeFileSync(knownHosts, before);
  // an ssh config that would let ssh go on past a changed key (pubkey login still allowed): enssib must not
  sshConfig = join(dir, 'ssh_config');
  writeFileSync(sshConfig, readFileSync(join(v.lab.state, 'ssh_config'), 'utf8').replaceAll('StrictHostKeyChecking yes', 'StrictHostKeyChecking no'));
  writeFileSync(inv, readFileSync(inv, 'utf8').replace(/^ {2}config: .*$/m, `  config: ${sshConfig}`).replace(/^ {2}knownHosts: .*$/m, `  knownHosts: ${knownHosts}`));
  v.exec(HOST, `rm -f ${WRITTEN.join(' ')}; touch ${MARK}`);
});

afterAll(() => {
  v.exec(HOST, `rm -f ${MARK}`);
});

describe('node bootstrap: a host key that does not match known_hosts', () => {
  it('is refused, never overridden (even under StrictHostKeyChecking no): exit 1, which host and which line, nothing changed, known_hosts byte for byte', async () => {
    const r = await run(['node', 'bootstrap', HOST, '--yes']);
    expect(r.code, r.stderr + r.stdout).toBe(ExitCode.failed);
    const text = r.stderr + r.stdout;
    expect(text).toMatch(new RegExp(`${HOST}: host key of ${HOST} has changed: it does not match known_hosts \\(${knownHosts.replaceAll('.', '\\.')}, line \\d+\\); refused`));
    expect(text).toContain('compare the new key\'s fingerprint');
    expect(text).not.toMatch(/Error: |\n\s+at /); // no stack trace
    expect(readFileSync(knownHosts, 'utf8')).toBe(before);
    // nothing ran on the worker: no file the bootstrap writes, nothing under /etc newer than the mark
    expect(v.exec(HOST, `for f in ${WRITTEN.join(' ')}; do [ -e "$f" ] && echo "$f"; done; find /etc -newer ${MARK} -print; true`)).toBe('');
  });

  it('node check is refused the same way and reports the drift as a failure (exit 1)', async () => {
    const r = await run(['node', 'check', HOST]);
    expect(r.code).toBe(ExitCode.failed);
    expect(r.stderr + r.stdout).toMatch(new RegExp(`${HOST}: host key of ${HOST} has changed`));
    expect(readFileSync(knownHosts, 'utf8')).toBe(before);
  });
});
