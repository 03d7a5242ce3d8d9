#!/usr/bin/env node
// Benchmark: how soon enssib notices that a rollout is complete. Target: within
// 1 s of the status that completes it (the wait is a WATCH, not a poll).
// Against the Kubernetes STAND-IN API server, with the real
// @kubernetes/client-node: each round applies a Deployment, the stand-in's
// controller completes it after 300–700 ms, and the time from that status write
// to the moment waitForRollout resolves is measured. Prints the figures.
//
//   npm run build && node test/bench/k8s-watch-latency.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, requireBuild, ROOT } from './lib.mjs';
import { loadStandIn } from './k8s-standin.mjs';

requireBuild();
const { startKubeStandIn } = await loadStandIn();
const { KubeConfig } = await import('@kubernetes/client-node');
const { createKubeApi } = await import(join(ROOT, 'dist/k8s/api.js'));
const { waitForRollout } = await import(join(ROOT, 'dist/k8s/wait.js'));

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const standIn = await startKubeStandIn();
const dir = mkdtempSync(join(tmpdir(), 'enssib-bench-watch-'));
try {
  const kc = new KubeConfig();
  kc.loadFromFile(standIn.writeKubeconfig(join(dir, 'kubeconfig')));
  const api = await createKubeApi(kc);
  const lat = [];
  for (let i = 0; i < ROUNDS; i++) {
    const name = `w${i}`;
    standIn.controller.script('default', name, { kind: 'succeed', afterMs: 300 + ((i * 97) % 400) });
    const labels = { app: name };
    const { object } = await api.apply(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'default' }, spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name, image: 'busybox:1.36' }] } } } },
      { force: true },
    );
    const r = await waitForRollout(api, object);
    const noticed = performance.now();
    if (!r.ok) throw new Error(`round ${i}: ${r.message}`);
    lat.push(noticed - standIn.controller.completedAt.get(`default/${name}`));
  }
  const watches = standIn.requests.filter((q) => q.watch).length;
  const polls = standIn.requests.filter((q) => q.method === 'GET' && !q.watch && q.path.includes('/deployments/')).length;
  console.log(`watch latency over ${ROUNDS} rollouts (completing status written → enssib's verdict):`);
  console.log(`  median ${median(lat).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms, min ${Math.min(...lat).toFixed(1)} ms  (target: < 1000 ms)`);
  console.log(`  ${watches} watch requests, ${polls} GETs of a Deployment while waiting (0 = no polling)`);
} finally {
  await standIn.close();
  rmSync(dir, { recursive: true, force: true });
}
