#!/usr/bin/env node
// Benchmark: the borg method's second backup of a volume where 5% of the 1 MiB
// blocks changed, against its first backup. Targets: the second stores at most
// 10% of the first's bytes and takes at most 50% of its time.
//
// Runs enssib's own borg commands (dist/backup/borg.js: init, create with
// --read-special and fixed 1 MiB chunks, zstd,3, repokey-blake2) for real with
// Debian's borgbackup on this machine, through enssib's LocalHost. A regular
// file of random bytes stands for the LVM snapshot device (what --read-special
// reads the same way); the repository is a local folder. Prints the figures;
// asserts nothing.
//
//   npm run build && node test/bench/borg-dedup.mjs            # 512 MiB volume
//   SIZE_MIB=2048 node test/bench/borg-dedup.mjs
//   CHANGED_MIB=1 node test/bench/borg-dedup.mjs              # 1 MiB changed instead of 5%
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { ROOT, requireBuild } from './lib.mjs';

requireBuild();
const { createArgv, initArgv, parseCreate } = await import(join(ROOT, 'dist/backup/borg.js'));
const { LocalHost } = await import(join(ROOT, 'dist/remote/local.js'));

const MiB = 1024 * 1024;
const sizeMiB = Number(process.env.SIZE_MIB ?? 512);
const changedBlocks = process.env.CHANGED_MIB ? Number(process.env.CHANGED_MIB) : Math.max(1, Math.round(sizeMiB * 0.05));
const dir = mkdtempSync(join(tmpdir(), 'enssib-bench-borg-'));
const dev = join(dir, 'snapshot.img');
const repo = { path: join(dir, 'dest', 'borg'), remote: null, passphraseFile: join(dir, 'passphrase') };
process.env.BORG_BASE_DIR = join(dir, 'borg-base');
const host = new LocalHost('data1', 3_600_000);

async function must(argv) {
  const r = await host.exec(argv);
  if (r.exitCode !== 0) throw new Error(`${argv.find((a) => a === 'init' || a === 'create') ?? argv[0]} failed (exit ${r.exitCode}): ${r.stderr.slice(-500)}`);
  return r;
}

async function backup(name, at) {
  const t0 = performance.now();
  const stats = parseCreate(await must(createArgv(repo, name, dev, at)));
  return { ms: performance.now() - t0, stored: stats.deduplicatedBytes, read: stats.originalBytes };
}

try {
  writeFileSync(repo.passphraseFile, `${randomBytes(24).toString('base64')}\n`, { mode: 0o600 });
  const fd = openSync(dev, 'w');
  for (let i = 0; i < sizeMiB; i++) writeSync(fd, randomBytes(MiB));
  closeSync(fd);
  await must(initArgv(repo));

  const first = await backup('vol.20261201T020000Z', new Date('2026-12-01T02:00:00Z'));

  // 5% of the 1 MiB blocks (or CHANGED_MIB of them) rewritten in place, at random offsets
  const blocks = new Set();
  while (blocks.size < changedBlocks) blocks.add(randomInt(sizeMiB));
  const w = openSync(dev, 'r+');
  for (const b of blocks) writeSync(w, randomBytes(MiB), 0, MiB, b * MiB);
  closeSync(w);

  const second = await backup('vol.20261202T020000Z', new Date('2026-12-02T02:00:00Z'));
  const bytesPct = (100 * second.stored) / first.stored;
  const timePct = (100 * second.ms) / first.ms;
  const mib = (b) => (b / MiB).toFixed(1);
  console.log(`borg-dedup: ${sizeMiB} MiB volume (random bytes), ${blocks.size} of ${sizeMiB} 1 MiB blocks changed (${((100 * blocks.size) / sizeMiB).toFixed(1)}%)`);
  console.log(`  first backup    ${mib(first.stored)} MiB stored in ${(first.ms / 1000).toFixed(2)} s`);
  console.log(`  second backup   ${mib(second.stored)} MiB stored in ${(second.ms / 1000).toFixed(2)} s`);
  console.log(`  bytes stored    ${bytesPct.toFixed(1)} % of the first  (target ≤ 10 %) ${bytesPct <= 10 ? 'OK' : 'OVER TARGET'}`);
  console.log(`  time            ${timePct.toFixed(1)} % of the first  (target ≤ 50 %) ${timePct <= 50 ? 'OK' : 'OVER TARGET'}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
