import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../../src/inventory/load.js';
import { enssib } from '../../support/cli.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

/**
 * `enssib node bootstrap` and `node check` from the command line. An ssh
 * config sends every host to 127.0.0.1 port 1 (refused): nothing leaves this
 * machine.
 */
const TEXT = `${VALID_INVENTORY}# the workers
nodes:
  interface: eth1
  apt: { url: "http://127.0.0.1:1/k8s/", key: k8s.gpg }
`;

function siteDir(text = TEXT): string {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-node-'));
  writeFileSync(join(dir, 'inventory.yaml'), text);
  writeFileSync(join(dir, 'k8s.gpg'), 'KEY');
  mkdirSync(join(dir, 'certs'));
  writeFileSync(join(dir, 'certs', 'enssib-ca.crt'), '-----BEGIN CERTIFICATE-----\n');
  writeFileSync(join(dir, 'ssh_config'), 'Host *\n  HostName 127.0.0.1\n  Port 1\n  ConnectTimeout 2\n');
  return dir;
}
const run = (dir: string, args: string[]) => enssib(['--inventory', join(dir, 'inventory.yaml'), ...args], { cwd: dir, env: { ENSSIB_SSH_CONFIG: join(dir, 'ssh_config') } });

describe('enssib node bootstrap (command line)', () => {
  it('--dry-run with a new worker shows the inventory diff and every command, and writes nothing', async () => {
    const dir = siteDir();
    const r = await run(dir, ['node', 'bootstrap', 'node03', '--address', '10.66.6.13', '--label', 'disk=ssd', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('+  - { name: node03, address: 10.66.6.13, roles: [worker], podSubnet: 10.100.3.0/24, labels: { disk: ssd } }');
    expect(r.stderr).toContain('is not written');
    expect(r.stdout).toContain('$ ip route replace 10.100.3.0/24 via 10.66.6.13 dev eth1');
    expect(readFileSync(join(dir, 'inventory.yaml'), 'utf8')).toBe(TEXT);
  });

  it('a missing apt key stops the run before the inventory is written', async () => {
    const dir = siteDir(TEXT.replace('key: k8s.gpg', 'key: missing.gpg'));
    const r = await run(dir, ['node', 'bootstrap', 'node03', '--address', '10.66.6.13', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: nodes\.apt\.key: cannot read .*missing\.gpg/m);
    expect(readFileSync(join(dir, 'inventory.yaml'), 'utf8')).toBe(TEXT.replace('key: k8s.gpg', 'key: missing.gpg'));
  });

  it('--yes writes the new worker atomically, then stops at an unreachable host having changed nothing there', async () => {
    const dir = siteDir();
    const r = await run(dir, ['node', 'bootstrap', 'node03', '--address', '10.66.6.13', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toMatch(/node03/);
    const text = readFileSync(join(dir, 'inventory.yaml'), 'utf8');
    expect(text.replace('  - { name: node03, address: 10.66.6.13, roles: [worker], podSubnet: 10.100.3.0/24 }\n', '')).toBe(TEXT);
    expect(parseInventory(text, 'i.yaml', {}).host('node03').podSubnet).toBe('10.100.3.0/24');
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('without a terminal, a new worker needs --address; a known one refuses --address', async () => {
    const dir = siteDir();
    const missing = await run(dir, ['node', 'bootstrap', 'node03', '--dry-run']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: missing --address/m);
    const known = await run(dir, ['node', 'bootstrap', 'node02', '--address', '10.66.6.30', '--dry-run']);
    expect(known.code).toBe(2);
    expect(known.stderr).toMatch(/already in .*inventory\.yaml/);
  });

  it.each([
    [['node03', '--address', '10.66.6.12'], /already used by "node02"/],
    [['node03', '--address', '10.1.2.3'], /outside the cluster network/],
    [['node03', '--address', '10.66.6.13', '--label', 'bad key=x'], /not a valid Kubernetes label key/],
    [['node;id', '--address', '10.66.6.13'], /^error: host name "node;id" is not valid/m],
    [['node03', '--address', '10.66.6.13', '--timeout', '0'], /--timeout/],
  ])('refuses bad input before anything runs: %j', async (args, message) => {
    const dir = siteDir();
    const r = await run(dir, ['node', 'bootstrap', ...args, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(readFileSync(join(dir, 'inventory.yaml'), 'utf8')).toBe(TEXT);
  });

  it('node check --dry-run lists the checks; an unreachable worker is drift (exit 1)', async () => {
    const dir = siteDir();
    const dry = await run(dir, ['node', 'check', 'node01', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('check: test -e /etc/kubernetes/kubelet.conf');
    expect(dry.stdout).toContain('route 10.100.1.0/24 (node01\'s pods) on every other worker'); // the fan-out is checked too
    const none = join(dir, 'no-kubeconfig');
    const r = await run(dir, ['--kubeconfig', none, 'node', 'check', 'node01', '-o', 'json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { drift: { phase: string; host: string; status: string }[]; notChecked: unknown };
    expect(doc.drift[0]).toMatchObject({ phase: 'facts', status: 'failed' });
    expect(doc.drift.filter((d) => d.phase === 'fan-out').map((d) => [d.host, d.status])).toEqual([['node02', 'failed']]);
    // the Kubernetes side is said to be unchecked, never silently skipped
    expect(doc.notChecked).toEqual([{ phase: 'ready', why: `no cluster API: no kubeconfig at ${none} (from --kubeconfig)` }]);
    const text = await run(dir, ['--kubeconfig', none, 'node', 'check', 'node01']);
    expect(text.stdout + text.stderr).toContain(`Node node01 in the cluster (labels, taints, Ready): not checked: no cluster API: no kubeconfig at ${none} (from --kubeconfig).`);
  });
});
