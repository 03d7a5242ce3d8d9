import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * globalSetup of the 'kernel' project: boots the kernel lab (QEMU VMs data1,
 * data2, node01 with DRBD dual-primary, LVM, LIO, open-iscsi and multipathd)
 * once per test run — test/lab/kernel/up.sh is idempotent and reuses VMs that
 * already run from the same state dir — and provides the state dir. Fails the
 * run when the lab cannot start; never skips. Teardown runs down.sh unless
 * ENSSIB_KEEP_LAB=1.
 */
const ROOT = join(import.meta.dirname, '..', '..');
export const KERNEL_LAB_STATE = process.env.ENSSIB_KERNEL_LAB_STATE ?? '/tmp/enssib-lab-kernel';

export default function setup(project: TestProject): () => void {
  const started = Date.now();
  execFileSync('bash', [join(ROOT, 'test/lab/kernel/up.sh'), '--state', KERNEL_LAB_STATE], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 40 * 60_000 });
  process.stderr.write(`kernel lab ready in ${((Date.now() - started) / 1000).toFixed(0)} s (${KERNEL_LAB_STATE})\n`);
  project.provide('kernelLab', KERNEL_LAB_STATE);
  return () => {
    if (process.env.ENSSIB_KEEP_LAB === '1') return;
    execFileSync('bash', [join(ROOT, 'test/lab/kernel/down.sh'), '--state', KERNEL_LAB_STATE], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** State folder of the kernel lab: inventory.yaml, ssh_config, known_hosts, <vm>.pid. */
    kernelLab: string;
  }
}
