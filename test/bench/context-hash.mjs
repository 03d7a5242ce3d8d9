#!/usr/bin/env node
// Benchmark: hashing a build context of 10,000 files of 1 KiB (walk + .dockerignore + SHA-256).
// Target: under 1 s. Prints the figure; asserts nothing.
//
//   npm run build && node test/bench/context-hash.mjs
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, requireBuild, ROOT } from './lib.mjs';

requireBuild();
const { readBuildContext, hashContext, HashCache } = await import(join(ROOT, 'dist', 'images', 'context.js'));

const FILES = 10_000;
const dir = mkdtempSync(join(tmpdir(), 'enssib-bench-ctx-'));
try {
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  writeFileSync(join(dir, '.dockerignore'), '**/*.tmp\nnode_modules\n');
  for (let d = 0; d < 100; d++) {
    mkdirSync(join(dir, `dir${d}`));
    for (let f = 0; f < FILES / 100; f++) writeFileSync(join(dir, `dir${d}`, `file${f}.txt`), randomBytes(1024));
  }
  const runs = [];
  let digest = '';
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const ctx = readBuildContext(dir);
    digest = hashContext(ctx);
    runs.push(performance.now() - t0);
    if (ctx.entries.filter((e) => e.type === 'file').length !== FILES + 2) throw new Error('unexpected file count');
  }
  const m = median(runs);
  console.log(`context-hash: ${FILES} files of 1 KiB: first ${runs[0].toFixed(0)} ms, median of 5 ${m.toFixed(0)} ms (target < 1000 ms) ${m < 1000 ? 'OK' : 'OVER TARGET'}`);
  // With the file hash cache of a previous run (what a second `enssib image push` does).
  const cacheDir = mkdtempSync(join(tmpdir(), 'enssib-bench-cache-'));
  try {
    const later = Date.now() + 10_000; // as if the files were not written a moment ago
    const first = HashCache.open(cacheDir, dir, later);
    hashContext(readBuildContext(dir), first);
    first.save(dir);
    const warm = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const c = HashCache.open(cacheDir, dir, later);
      const d = hashContext(readBuildContext(dir), c);
      warm.push(performance.now() - t0);
      if (d !== digest) throw new Error('cached digest differs');
    }
    console.log(`  with the file hash cache of a previous run: median of 5 ${median(warm).toFixed(0)} ms`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  console.log(`  digest ${digest.slice(0, 16)}…`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
