import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { inject } from 'vitest';
import { enssib, type CliResult } from '../../support/cli.js';

const KERNEL_LAB = join(import.meta.dirname, '..', '..', 'lab', 'kernel');

/** The lab's apt repository being served to a VM: `url` is what apt in the VM uses. */
export interface ServedRepo {
  /** http://127.0.0.1:PORT/ inside the VM (a flat repository: suite "/"). */
  url: string;
  /** The repository's public signing key on the host (a binary keyring, for signed-by). */
  key: string;
  close(): void;
}

/** One QMP command on a VM's monitor socket; resolves with its "return" value. */
async function qmp(socket: string, execute: string, args?: Record<string, unknown>, timeoutMs = 600_000): Promise<unknown> {
  const conn = createConnection(socket);
  const lines = createInterface({ input: conn });
  const timer = setTimeout(() => conn.destroy(new Error(`QMP ${execute} on ${socket}: no answer after ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    let sent = 0;
    for await (const line of lines) {
      const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
      if (msg.event) continue;
      if (msg.error) throw new Error(`QMP ${execute} on ${socket}: ${msg.error.desc}`);
      if (msg.QMP) {
        conn.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
      } else if (sent === 0) {
        sent = 1;
        conn.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + '\n');
      } else {
        return msg.return;
      }
    }
    throw new Error(`QMP ${execute} on ${socket}: the connection closed`);
  } finally {
    clearTimeout(timer);
    conn.destroy();
  }
}

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
    /** A QEMU monitor (HMP) command on a VM; throws when it prints an error (savevm/loadvm/delvm print nothing on success). */
    async monitor(vm: string, command: string): Promise<string> {
      const out = String((await qmp(join(state, `${vm}.qmp`), 'human-monitor-command', { 'command-line': command })) ?? '');
      if (/error|fail|not found|does not/i.test(out)) throw new Error(`${vm}: "${command}": ${out.trim()}`);
      return out;
    },
    /**
     * Saves a VM's whole running state (disk and memory, a qcow2 internal
     * snapshot) under `tag`. A snapshot left by an interrupted run is loaded
     * first: the VM goes back to the state that run started from.
     */
    async snapshot(vm: string, tag: string): Promise<void> {
      const list = await this.monitor(vm, 'info snapshots');
      if (new RegExp(`\\s${tag}\\s`).test(list)) {
        await this.restore(vm, tag, { keep: true });
        return;
      }
      await this.monitor(vm, `savevm ${tag}`);
      // the VM was paused while it was saved: its clock is behind by that long
      this.setClock(vm);
    },
    /** Loads the snapshot (the VM runs on from that state), deletes it unless `keep`, and sets the VM's clock from the host's. */
    async restore(vm: string, tag: string, o: { keep?: boolean } = {}): Promise<void> {
      await this.monitor(vm, `loadvm ${tag}`);
      if (!o.keep) await this.monitor(vm, `delvm ${tag}`);
      this.waitSsh(vm, 120_000);
      this.setClock(vm);
    },
    /** Sets a VM's clock from the host's (to the millisecond, as sent). */
    setClock(vm: string): void {
      this.must(vm, `date -u -s @${(Date.now() / 1000).toFixed(3)} >/dev/null`);
    },
    /** Waits until ssh to the VM answers (throws after `timeoutMs`). */
    waitSsh(vm: string, timeoutMs = 300_000): void {
      const end = Date.now() + timeoutMs;
      for (;;) {
        if (this.sh(vm, 'true', 20_000).code === 0) return;
        if (Date.now() > end) throw new Error(`${vm}: ssh does not answer after ${timeoutMs / 1000} s`);
        spawnSync('sleep', ['3']);
      }
    },
    /** Reboots a VM from inside and waits for ssh on the new boot (the boot id changes); returns the seconds it took. */
    reboot(vm: string, timeoutMs = 400_000): number {
      const t = Date.now();
      const bootId = this.must(vm, 'cat /proc/sys/kernel/random/boot_id').trim();
      this.sh(vm, 'systemctl reboot', 30_000);
      const end = Date.now() + timeoutMs;
      for (;;) {
        spawnSync('sleep', ['5']);
        const r = this.sh(vm, 'cat /proc/sys/kernel/random/boot_id', 20_000);
        if (r.code === 0 && r.stdout.trim() !== bootId) return (Date.now() - t) / 1000;
        if (Date.now() > end) throw new Error(`${vm}: not back after a reboot in ${timeoutMs / 1000} s (see ${join(state, `${vm}.serial.log`)})`);
      }
    },
    /** The lab's signed apt repository (test/lab/kernel/apt-repo.sh, cached): its directory on the host. */
    aptRepo(): string {
      const image = readFileSync(join(state, 'image'), 'utf8').trim();
      return execFileSync('bash', [join(KERNEL_LAB, 'apt-repo.sh'), '--image', image, '--print-dir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }).trim();
    },
    /**
     * Serves the lab's apt repository to a VM over loopback only: an HTTP
     * server on the host's 127.0.0.1 and an ssh reverse forward to the VM's
     * 127.0.0.1:`port`. Resolves when the VM reads the repository's InRelease.
     */
    async serveAptRepo(vm: string, port = 18080): Promise<ServedRepo> {
      const dir = this.aptRepo();
      const children: ChildProcess[] = [];
      const close = () => {
        for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
      };
      try {
        const server = spawn('node', [join(KERNEL_LAB, 'serve-repo.mjs'), join(dir, 'repo')], { stdio: ['ignore', 'pipe', 'inherit'] });
        children.push(server);
        const hostPort = await new Promise<string>((resolve, reject) => {
          createInterface({ input: server.stdout }).once('line', resolve);
          server.once('exit', (code) => reject(new Error(`serve-repo.mjs exited (${code}) before listening`)));
        });
        const forward = spawn('ssh', ['-F', join(state, 'ssh_config'), '-N', '-o', 'ExitOnForwardFailure=yes', '-R', `127.0.0.1:${port}:127.0.0.1:${hostPort}`, vm], { stdio: 'ignore' });
        children.push(forward);
        const url = `http://127.0.0.1:${port}/`;
        const end = Date.now() + 60_000;
        for (;;) {
          // bash's /dev/tcp: the VM has neither curl nor wget
          const r = this.sh(vm, `exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'HEAD /InRelease HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3`, 20_000);
          if (r.stdout.includes(' 200 ')) break;
          if (forward.exitCode !== null) throw new Error(`${vm}: ssh -R 127.0.0.1:${port} failed (exit ${forward.exitCode}): is the port taken in the VM?`);
          if (Date.now() > end) throw new Error(`${vm}: the lab's apt repository is not reachable at ${url} after 60 s: ${r.stdout}${r.stderr}`);
          spawnSync('sleep', ['1']);
        }
        return { url, key: join(dir, 'key.gpg'), close };
      } catch (e) {
        close();
        throw e;
      }
    },
  };
}
