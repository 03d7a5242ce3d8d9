import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { enssib, type CliResult } from '../../support/cli.js';

/** Helpers for the kernel lab tests: ssh to the VMs, the CLI against the lab inventory, the VMs' qemu pids. */
export function kernelLab() {
  const state = inject('kernelLab');
  const inventory = join(state, 'inventory.yaml');
  return {
    state,
    inventory,
    /** Runs a bash script on a VM (script on stdin, so nothing needs quoting). */
    sh(host: string, script: string, timeoutMs = 120_000): { code: number; stdout: string; stderr: string } {
      const r = spawnSync('ssh', ['-F', join(state, 'ssh_config'), host, 'bash', '-s'], { input: script, encoding: 'utf8', timeout: timeoutMs });
      return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    /** Like sh, but throws with the output when the script fails. */
    must(host: string, script: string, timeoutMs = 120_000): string {
      const r = this.sh(host, script, timeoutMs);
      if (r.code !== 0) throw new Error(`${host}: script failed (${r.code}):\n${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
      return r.stdout;
    },
    /** Runs a bash script on a VM in the background; resolves with its exit code and output when it ends. */
    background(host: string, script: string): Promise<{ code: number; stdout: string }> {
      return new Promise((resolve) => {
        const child = spawn('ssh', ['-F', join(state, 'ssh_config'), host, 'bash', '-s'], { stdio: ['pipe', 'pipe', 'inherit'] });
        let stdout = '';
        child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
        child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
        child.stdin.end(script);
      });
    },
    enssib(args: string[], timeoutMs = 900_000): Promise<CliResult> {
      return enssib(['-i', inventory, ...args], { timeoutMs });
    },
    /** Waits until DRBD r0 is Connected, UpToDate and Primary on both sides (throws with /proc/drbd after 300 s). */
    waitDrbdReady(): void {
      this.must(
        'data1',
        `for i in $(seq 1 150); do
           [ "$(drbdadm cstate r0)" = Connected ] && [ "$(drbdadm dstate r0)" = UpToDate/UpToDate ] && [ "$(drbdadm role r0)" = Primary/Primary ] && exit 0
           sleep 2
         done
         cat /proc/drbd; exit 1`,
        400_000,
      );
    },
    pid(vm: string): number {
      return Number(readFileSync(join(state, `${vm}.pid`), 'utf8').trim());
    },
  };
}
