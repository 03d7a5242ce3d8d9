import { describe, expect, it } from 'vitest';
import type { Finding } from '../../../src/engine/findings.js';
import { enssib } from '../../support/cli.js';
import { standInSite } from '../../support/kube-stand-in/fixture.js';

/**
 * The kubernetes check of `enssib doctor` against the Kubernetes STAND-IN API
 * server (plain HTTP on loopback, so its certificate check cannot run): the
 * API answers, every inventory worker is a Ready node, a node the inventory
 * does not know is a warning, a NotReady worker fails; no API server: the
 * check could not run.
 */
const env = standInSite();

const node = (name: string, ready: string, message = '') => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  status: { conditions: [{ type: 'Ready', status: ready, reason: ready === 'True' ? 'KubeletReady' : 'KubeletNotReady', message }] },
});

async function doctor(): Promise<{ code: number; findings: Finding[]; stderr: string }> {
  const r = await enssib(['-i', env.site.inventory, 'doctor', '--only', 'kubernetes', '-o', 'json']);
  return { code: r.code, stderr: r.stderr, findings: (JSON.parse(r.stdout || '{"findings":[]}') as { findings: Finding[] }).findings };
}

const rows = (fs: Finding[]) => fs.map((f) => `${f.severity} ${f.host}: ${f.found}`);

describe('doctor --only kubernetes (stand-in API server)', () => {
  it('workers Ready, a node the inventory does not know, a NotReady worker', async () => {
    env.standIn.seed(node('data1', 'True'));
    env.standIn.seed(node('node01', 'True'));
    env.standIn.seed(node('node07', 'True'));
    const healthy = await doctor();
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(rows(healthy.findings)).toEqual([
      'warn node07: node node07 is in the cluster but not in the inventory',
      `unknown kubernetes: could not run: the API server ${env.standIn.url} is plain HTTP: no certificate to check`,
      `ok kubernetes: the API server ${env.standIn.url} answers; 3 nodes`,
      'ok node01: node node01 Ready',
    ]);
    env.standIn.seed(node('node01', 'False', 'container runtime network not ready'));
    env.standIn.remove('v1', 'Node', '', 'node07');
    const sick = await doctor();
    expect(sick.code).toBe(1);
    expect(rows(sick.findings.filter((f) => f.severity === 'fail'))).toEqual(['fail node01: node node01 is not Ready (Ready=False: container runtime network not ready)']);
    expect(sick.findings.find((f) => f.severity === 'fail')?.fix).toMatch(/kubelet/);
  });

  it('the API server gone: could not run, and why; exit 0', async () => {
    const url = env.standIn.url;
    await env.standIn.close();
    const r = await doctor();
    expect(r.code, r.stderr).toBe(0);
    expect(rows(r.findings)).toEqual([`unknown kubernetes: could not run: cannot reach the Kubernetes API server at ${url}: connection refused`]);
  });
});
