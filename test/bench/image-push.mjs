#!/usr/bin/env node
// Benchmark: `enssib image push` of a service whose image adds a 50 MB layer of
// random bytes — first push (hash, ask the registry, build, upload) against a
// second, unchanged push (hash and ask the registry only). Target: the second
// takes at most 5% of the first's wall time. Also prints the platform's floor: a
// bare Node https client (no enssib code) making the unchanged push's two registry
// requests, as a share of the same first push. Prints the figures; asserts nothing.
//
// Needs what the images tests need (root, docker.io, docker-registry, openssl,
// apache2-utils): it starts the images lab with test/lab/registry/up.sh and
// removes it afterwards (ENSSIB_REGISTRY_LAB_STATE=<dir> reuses a running lab).
//
//   npm run build && node test/bench/image-push.mjs
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, requireBuild, ROOT } from './lib.mjs';

requireBuild();
const BIN = join(ROOT, 'bin', 'enssib.js');
const own = !process.env.ENSSIB_REGISTRY_LAB_STATE;
const state = process.env.ENSSIB_REGISTRY_LAB_STATE ?? mkdtempSync(join(tmpdir(), 'enssib-bench-registry-'));
if (own) execFileSync('bash', [join(ROOT, 'test/lab/registry/up.sh'), state], { stdio: ['ignore', 'ignore', 'inherit'] });
const lab = JSON.parse(readFileSync(join(state, 'state.json'), 'utf8'));

const site = mkdtempSync(join(tmpdir(), 'enssib-bench-site-'));
try {
  writeFileSync(join(site, 'inventory.yaml'), readFileSync(lab.inventory));
  const svc = join(site, 'services', 'blob');
  mkdirSync(svc, { recursive: true });
  writeFileSync(join(svc, 'Dockerfile'), 'FROM scratch\nCOPY blob.bin /blob.bin\n');
  writeFileSync(join(svc, 'blob.bin'), randomBytes(50 * 1000 * 1000));
  mkdirSync(join(site, '.docker'));

  const push = () => {
    const t0 = performance.now();
    const r = spawnSync('node', [BIN, '-i', join(site, 'inventory.yaml'), '-o', 'json', 'image', 'push', 'blob'], {
      cwd: site,
      encoding: 'utf8',
      env: { ...process.env, DOCKER_CONFIG: join(site, '.docker'), ENSSIB_CACHE_DIR: join(site, '.cache'), NO_COLOR: '1' },
    });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`enssib image push failed (exit ${r.status}):\n${r.stderr}`);
    const img = JSON.parse(r.stdout).images[0];
    return { ms, status: img.status, ref: img.reference };
  };

  const first = push();
  if (first.status !== 'pushed') throw new Error(`first push: expected "pushed", got ${first.status}`);
  const again = [push(), push(), push()];
  for (const a of again) if (a.status !== 'present') throw new Error(`unchanged push: expected "present", got ${a.status}`);
  // The floor: the CLI's start-up and inventory loading alone, measured the same way.
  const checkMs = median(
    [0, 1, 2].map(() => {
      const t0 = performance.now();
      const r = spawnSync('node', [BIN, '-i', join(site, 'inventory.yaml'), 'inventory', 'check'], { cwd: site, stdio: 'ignore' });
      if (r.status !== 0) throw new Error('enssib inventory check failed');
      return performance.now() - t0;
    }),
  );
  // The platform's floor: a bare Node script, no enssib code, asking the same registry the same
  // two questions over one TLS connection (GET /v2/ and HEAD of the manifest, credentials sent at once).
  const tag = first.ref.slice(first.ref.lastIndexOf(':') + 1);
  const bare = median([0, 1, 2, 3, 4].map(() => bareClient(lab, `/v2/blob/manifests/${tag}`)));
  const second = again[0].ms;
  const m = median(again.map((a) => a.ms));
  const ratio = (second / first.ms) * 100;
  console.log(`image-push: 50 MB random layer`);
  console.log(`  first push (build + upload)       ${first.ms.toFixed(0)} ms`);
  console.log(`  second push (unchanged)           ${second.toFixed(0)} ms  (median of 3 unchanged pushes ${m.toFixed(0)} ms)`);
  console.log(`  second / first                    ${ratio.toFixed(1)} %  (target ≤ 5 %) ${ratio <= 5 ? 'OK' : 'OVER TARGET'}`);
  console.log(`  for scale: enssib inventory check ${checkMs.toFixed(0)} ms (start-up and inventory loading alone, median of 3)`);
  console.log(`  floor: bare node https client     ${bare.toFixed(0)} ms = ${((bare / first.ms) * 100).toFixed(1)} % of the first push (no enssib code: node, TLS, the same two requests; median of 5)`);
  try {
    execFileSync('docker', ['rmi', '-f', first.ref], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
} finally {
  rmSync(site, { recursive: true, force: true });
  if (own) execFileSync('bash', [join(ROOT, 'test/lab/registry/down.sh'), state], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Wall time of `node -e <a minimal https client>` making the two requests of an unchanged push (throws unless both answer 200). */
function bareClient(lab, path) {
  const script = `
const https = require('node:https');
const fs = require('node:fs');
const [host, port, caFile, user, pwFile, path] = process.argv.slice(1);
const agent = new https.Agent({ keepAlive: true, ca: fs.readFileSync(caFile) });
const authorization = 'Basic ' + Buffer.from(user + ':' + fs.readFileSync(pwFile, 'utf8').trim()).toString('base64');
const ask = (method, p) => new Promise((resolve, reject) => {
  const r = https.request({ host, port, path: p, method, agent, headers: { authorization, accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
  r.on('error', reject);
  r.end();
});
ask('GET', '/v2/').then((a) => ask('HEAD', path).then((b) => { agent.destroy(); if (a !== 200 || b !== 200) { console.error(a, b); process.exitCode = 1; } }));
`;
  const t0 = performance.now();
  const r = spawnSync('node', ['-e', script, lab.name, String(lab.port), lab.caFile, lab.username, lab.passwordFile, path], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`bare https client failed (exit ${r.status}): ${r.stderr}`);
  return ms;
}
