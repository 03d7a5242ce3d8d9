import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { enssib, type CliResult } from '../../support/cli.js';
import { hostsLab } from '../../support/hosts-lab.js';

/**
 * The hosts lab with the storage stand-ins (stand-ins/storage.sh) installed
 * under every tool name enssib's volume commands call.
 */
export const STORAGE_TOOLS = [
  'drbdadm',
  'vgs',
  'pvs',
  'lvs',
  'lvcreate',
  'lvchange',
  'lvextend',
  'lvremove',
  'blockdev',
  'blkid',
  'wipefs',
  'mkfs.ext4',
  'mkfs.xfs',
  'scstadmin',
  'iscsiadm',
  'multipath',
  'multipathd',
  'dmsetup',
  'udevadm',
] as const;

const SCRIPT = join(import.meta.dirname, 'stand-ins', 'storage.sh');
const MAIN = 'enssib-storage-stand-in';

export function volumeLab() {
  const lab = hostsLab();
  const hosts = JSON.parse(readFileSync(join(lab.state, 'hosts.json'), 'utf8')) as { name: string; container: string }[];
  const container = (h: string) => {
    const c = hosts.find((x) => x.name === h)?.container;
    if (!c) throw new Error(`no host ${h} in the hosts lab`);
    return c;
  };
  const api = {
    lab,
    hosts: hosts.map((h) => h.name),
    workers: hosts.map((h) => h.name).filter((n) => n.startsWith('node')),
    /** Installs the stand-ins; `conf` lines go to stand-in.conf (e.g. DELAY=0.2, DELAY_lvcreate=2). */
    install(conf: string[] = []): void {
      api.uninstall();
      copyFileSync(SCRIPT, join(lab.standIns, MAIN));
      chmodSync(join(lab.standIns, MAIN), 0o755);
      for (const t of STORAGE_TOOLS) symlinkSync(MAIN, join(lab.standIns, t));
      writeFileSync(join(lab.standIns, 'stand-in.conf'), `${conf.join('\n')}\n`);
    },
    configure(conf: string[]): void {
      writeFileSync(join(lab.standIns, 'stand-in.conf'), `${conf.join('\n')}\n`);
    },
    uninstall(): void {
      for (const f of [MAIN, 'stand-in.conf', ...STORAGE_TOOLS]) rmSync(join(lab.standIns, f), { force: true });
    },
    /** Runs a shell script in a host's container as root. */
    exec(host: string, script: string): string {
      return execFileSync('docker', ['exec', container(host), 'sh', '-c', script], { encoding: 'utf8' });
    },
    /** Forgets every stand-in state, the SCST files, the lock and the call logs, on every host. */
    reset(): void {
      for (const h of hosts) {
        execFileSync('docker', ['exec', h.container, 'sh', '-c', 'rm -rf /var/lib/enssib-stand-in /etc/scst.conf /run/enssib/storage.lock; : > /var/log/enssib-stand-ins.log'], { encoding: 'utf8' });
      }
    },
    /** The calls the stand-ins recorded on a host, as argv arrays, in order. */
    calls(host: string): string[][] {
      const text = execFileSync('docker', ['exec', container(host), 'cat', '/var/log/enssib-stand-ins.log'], { encoding: 'utf8' });
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t'))
        .filter((a) => (STORAGE_TOOLS as readonly string[]).includes(a[0] as string));
    },
    /** The calls as lines "tool arg arg" (for readable assertions). */
    lines(host: string, tool?: string): string[] {
      return api
        .calls(host)
        .filter((a) => !tool || a[0] === tool)
        .map((a) => a.join(' '));
    },
    clearCalls(): void {
      for (const h of hosts) execFileSync('docker', ['exec', h.container, 'sh', '-c', ': > /var/log/enssib-stand-ins.log']);
    },
    file(host: string, path: string): string {
      return execFileSync('docker', ['exec', container(host), 'cat', path], { encoding: 'utf8' });
    },
    writeFile(host: string, path: string, content: string, mode = '0644'): void {
      // The folder may not exist yet (/run/enssib on a lab just started, before enssib took the lock there once).
      execFileSync('docker', ['exec', '-i', container(host), 'sh', '-c', `mkdir -p "$(dirname "$1")" && cat > "$1" && chmod ${mode} "$1"`, 'sh', path], { input: content });
    },
    pause(host: string): void {
      execFileSync('docker', ['pause', container(host)]);
    },
    unpause(host: string): void {
      execFileSync('docker', ['unpause', container(host)]);
    },
    enssib(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
      return enssib(['-i', lab.inventoryFile, ...args], { env, timeoutMs: 300_000 });
    },
  };
  return api;
}
