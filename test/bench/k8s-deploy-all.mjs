#!/usr/bin/env node
// Benchmark: `enssib service deploy --all --no-build` over 10 services whose
// rollouts each take 2 s in the Kubernetes STAND-IN API server, against the
// same command for 1 service. Target: at most 2x the wall time of one service
// (applies and waits run in parallel). The real CLI (node bin/enssib.js) runs
// it; the services use a public image, so no registry or Docker engine is
// involved. Prints the figures; asserts nothing.
//
//   npm run build && node test/bench/k8s-deploy-all.mjs
import { execa } from 'execa';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, requireBuild, ROOT } from './lib.mjs';
import { loadStandIn } from './k8s-standin.mjs';

requireBuild();
const { startKubeStandIn } = await loadStandIn();
const standIn = await startKubeStandIn({ rolloutMs: 2000 });
const BIN = join(ROOT, 'bin', 'enssib.js');
const ROUNDS = Number(process.env.ROUNDS ?? 3);

function site(n, round) {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-bench-deploy-'));
  writeFileSync(
    join(dir, 'inventory.yaml'),
    [
      'networks: { pods: 10.100.0.0/16, services: 10.101.0.0/23, cluster: { cidr: 10.66.6.0/24, mtu: 9000 } }',
      'hosts: [{ name: data1, address: 10.66.6.1, roles: [master, storage] }]',
      'registry: { host: "127.0.0.1:9" }',
      `kubernetes: { api: "${standIn.url}", kubeconfig: kubeconfig }`,
      'storage: { volumeGroup: vg, drbdResource: r0, metadataHost: data1, iqnPrefix: iqn.2016-04.fr.enssib, portals: [10.66.6.1:3260], targetDriver: lio }',
      '',
    ].join('\n'),
  );
  standIn.writeKubeconfig(join(dir, 'kubeconfig'));
  for (let i = 0; i < n; i++) {
    const name = `s${n}-${round}-${i}`;
    const svc = join(dir, 'services', name);
    mkdirSync(svc, { recursive: true });
    cpSync(join(ROOT, 'templates/service'), svc, { recursive: true });
    rmSync(join(svc, 'Dockerfile'));
    for (const f of ['deployment.yaml', 'service.yaml', 'policy.yaml']) {
      const text = readFileSync(join(svc, f), 'utf8').replaceAll('{{name}}', name).replace(/^(\s+)image: .*$/m, '$1image: docker.io/library/busybox:1.36');
      writeFileSync(join(svc, f), text);
    }
  }
  return dir;
}

// asynchronous: the stand-in serves from this very process
async function deployAll(dir) {
  const t = performance.now();
  const r = await execa('node', [BIN, 'service', 'deploy', '--all', '--no-build'], { cwd: dir, reject: false, env: { NO_COLOR: '1', CI: '1', KUBECONFIG: '', DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
  const ms = performance.now() - t;
  if (r.exitCode !== 0) throw new Error(`deploy failed (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  return ms;
}

const dirs = [];
try {
  const one = [];
  const ten = [];
  for (let round = 0; round < ROUNDS; round++) {
    const a = site(1, round);
    const b = site(10, round);
    dirs.push(a, b);
    one.push(await deployAll(a));
    ten.push(await deployAll(b));
  }
  const m1 = median(one);
  const m10 = median(ten);
  console.log('service deploy --all --no-build, rollouts of 2 s each in the stand-in (median of', ROUNDS, 'runs, CLI wall time):');
  console.log(`  1 service:   ${(m1 / 1000).toFixed(2)} s`);
  console.log(`  10 services: ${(m10 / 1000).toFixed(2)} s  = ${(m10 / m1).toFixed(2)}x one service (target: at most 2x)`);
} finally {
  await standIn.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
