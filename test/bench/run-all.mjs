// Runs every benchmark under test/bench/ in turn and prints its figures.
// Several take over the labs (hosts lab containers, registry, VMs): run them on a quiet machine.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = import.meta.dirname;
const only = process.argv.slice(2);
for (const f of readdirSync(dir).filter((n) => n.endsWith('.mjs') && !['run-all.mjs', 'lib.mjs', 'k8s-standin.mjs'].includes(n)).sort()) {
  if (only.length && !only.some((o) => f.includes(o))) continue;
  console.log(`\n== ${f}`);
  try {
    execFileSync(process.execPath, [join(dir, f)], { stdio: 'inherit' });
  } catch {
    console.log(`(${f} failed)`);
    process.exitCode = 1;
  }
}
