import { execSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN, enssib } from '../../support/cli.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

/**
 * What a sysadmin meets first, through the built binary without a terminal:
 * pipes cut short, hosts that do not answer, sizes and names, the files the
 * inventory names, help and version.
 */
const ROOT = join(import.meta.dirname, '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'enssib-operator-'));
/** A fake `ssh` first on PATH: every host is down (exit 255, as ssh does when it cannot connect). */
const downEnv = { PATH: `${dir}:${process.env.PATH ?? ''}`, HOME: dir };

beforeAll(() => {
  assertBuilt();
  writeFileSync(join(dir, 'ssh'), '#!/bin/sh\necho "ssh: connect to host: Connection refused" >&2\nexit 255\n');
  chmodSync(join(dir, 'ssh'), 0o755);
});

/** Runs `enssib ARGS | head -1` in sh; returns enssib's own exit status and stderr. */
async function intoHead(args: string[]) {
  const cmd = `node ${BIN} ${args.map((a) => `'${a}'`).join(' ')} 2>"$ERR" | head -1; echo "status=\${PIPESTATUS[0]}"`;
  const errFile = join(dir, `err-${args.join('-').replace(/[^a-z0-9-]/gi, '')}`);
  const r = await execa('bash', ['-c', cmd], { cwd: ROOT, env: { NO_COLOR: '1', CI: '1', ERR: errFile, ENSSIB_SSH_CONFIG: '/nonexistent/ssh_config' }, reject: false });
  return { stdout: String(r.stdout), stderr: readFileSync(errFile, 'utf8') };
}

describe('output cut short by the reader (| head)', () => {
  it.each([
    [['volume', 'create', 'mail', '200G', '-n']],
    [['service', 'deploy', 'ldap', '-n']],
    [['--help']],
    [['volume', 'create', 'mail', '200G', '-n', '-o', 'json']],
  ])('enssib %j | head -1 ends quietly with the command own status', async (args) => {
    const r = await intoHead(args);
    expect(r.stderr).not.toMatch(/EPIPE|Error:|at .*\.js/);
    expect(r.stdout).toMatch(/status=0\n?$/);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(2);
  });
});

describe('volume list when hosts do not answer', () => {
  it('every host down: a failure (exit 1) that never claims there are no volumes', async () => {
    const r = await enssib(['volume', 'list'], { env: downEnv });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).not.toContain('No volumes');
    expect(r.stderr).toMatch(/^error: no storage server answered \(data1, data2\): the volumes are unknown$/m);
    expect(r.stderr).toContain('enssib doctor');
    expect(r.stderr).not.toContain('"?" above');
  });

  it('the same in JSON: nothing on stdout, the error on stderr', async () => {
    const r = await enssib(['volume', 'list', '-o', 'json'], { env: downEnv });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
  });
});

describe('sizes need a unit and speak binary', () => {
  it.each([
    ['200', /size "200" has no unit[\s\S]*Did you mean 200G\?/],
    ['1048577', /size "1048577" has no unit[\s\S]*If 1048577 is in bytes, that is about 1M/],
    ['200GB', /size "200GB": "GB" is ambiguous \(decimal or binary\?\)[\s\S]*write 200G or 200GiB/],
    ['1tb', /"tb" is ambiguous[\s\S]*write 1T or 1TiB/],
    ['0', /must be greater than zero/],
  ])('volume create mail %s is refused with a hint', async (size, re) => {
    const r = await enssib(['volume', 'create', 'mail', size, '-n']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(re);
    expect(r.stdout).toBe('');
  });

  it.each(['200G', '200GiB', '1.5T', '512M', '512MiB'])('accepts %s', async (size) => {
    const r = await enssib(['volume', 'create', 'mail', size, '-n']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('resize speaks of the new size, not of creating a volume', async () => {
    const r = await enssib(['volume', 'resize', 'mail', '512K', '-n']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: new size "512K" is below 1M/m);
  });

  it('--help says how sizes are written', async () => {
    const r = await enssib(['volume', 'create', '--help']);
    expect(r.stdout).toMatch(/binary unit[\s\S]*"GB" and a bare\s+number are\s+refused/);
  });
});

describe('names LVM reserves', () => {
  it.each(['snapshot', 'snapshots', 'snapshot-mail', 'pvmove', 'pvmove0'])('volume create %s is refused up front with the reason', async (name) => {
    const r = await enssib(['volume', 'create', name, '2G', '-n']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is reserved by LVM: names starting "(snapshot|pvmove)" are refused by lvcreate/);
    expect(r.stdout).toBe('');
  });
  it.each(['_mail', 'mail_mlog', 'mail_rimage_0'])('%s is refused (not a DNS label, so never an LV name with an LVM suffix)', async (name) => {
    const r = await enssib(['volume', 'delete', name, '-n']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/volume name .* is not valid/);
  });
  it('a name merely containing "snapshot" is fine', async () => {
    expect((await enssib(['volume', 'create', 'mail-snapshot', '2G', '-n'])).code).toBe(0);
  });
});

describe('inventory check verifies the files the inventory names', () => {
  const site = (extra: (d: string) => string, setup?: (d: string) => void) => {
    const d = mkdtempSync(join(tmpdir(), 'enssib-files-'));
    setup?.(d);
    writeFileSync(join(d, 'inventory.yaml'), extra(VALID_INVENTORY));
    return d;
  };
  it('the bundled inventory passes and names no file it lacks', async () => {
    const r = await enssib(['inventory', 'check'], { env: { HOME: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('inventory.yaml: valid');
  });
  it('a missing CA file is named with file:line:column', async () => {
    const d = site((t) => t);
    const r = await enssib(['inventory', 'check'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^error: ${d}/inventory\\.yaml:14:\\d+: registry\\.ca: the registry's CA certificate ${d}/certs/enssib-ca\\.crt does not exist$`, 'm'));
  });
  it('a directory where a file is expected, a world-readable password file, a missing kubeconfig and ssh files', async () => {
    const d = site(
      (t) =>
        t
          .replace('ca: certs/enssib-ca.crt', 'ca: certs, auth: { username: ci, passwordFile: pw }')
          .replace('kubernetes: { api: https://api.cluster.enssib.fr:6443 }', 'kubernetes: { api: https://api.cluster.enssib.fr:6443, kubeconfig: kube.conf }')
          .replace('ssh:\n  connectTimeout: 5', 'ssh:\n  connectTimeout: 5\n  config: ssh_config\n  knownHosts: known_hosts'),
      (dd) => {
        mkdirSync(join(dd, 'certs'));
        writeFileSync(join(dd, 'pw'), 'secret\n', { mode: 0o644 });
        writeFileSync(join(dd, 'known_hosts'), '');
      },
    );
    const r = await enssib(['inventory', 'check'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`registry.ca: the registry's CA certificate ${d}/certs is a directory, not a file`);
    expect(r.stderr).toContain(`registry.auth.passwordFile: the registry password file ${d}/pw is readable by everyone (mode 0644): chmod 600 it`);
    expect(r.stderr).toContain(`kubernetes.kubeconfig: the kubeconfig ${d}/kube.conf does not exist`);
    expect(r.stderr).toContain(`ssh.config: the ssh config ${d}/ssh_config does not exist`);
    expect(r.stderr).not.toContain('ssh.knownHosts');
  });
  it('all files present and the password file private: valid', async () => {
    const d = site(
      (t) => t.replace('ca: certs/enssib-ca.crt', 'ca: certs/enssib-ca.crt, auth: { username: ci, passwordFile: pw }'),
      (dd) => {
        mkdirSync(join(dd, 'certs'));
        writeFileSync(join(dd, 'certs', 'enssib-ca.crt'), '');
        writeFileSync(join(dd, 'pw'), 'secret\n', { mode: 0o600 });
      },
    );
    const r = await enssib(['inventory', 'check'], { cwd: d });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('client dry runs a reviewer can trust and compare', () => {
  const env = { ENSSIB_SSH_CONFIG: '/nonexistent/ssh_config' };
  it('resize --grow-fs lists the filesystem grow, marked with its condition; without the flag it does not', async () => {
    const grow = await enssib(['volume', 'resize', 'mail', '300G', '--grow-fs', '-n'], { env });
    expect(grow.code).toBe(0);
    expect(grow.stdout).toContain("$ resize2fs '/dev/mapper/<map of the volume>'   # only if an ext4 filesystem of the volume is mounted on this worker (--grow-fs)");
    expect(grow.stdout).toContain("$ xfs_growfs '<mountpoint>'   # only if an xfs filesystem of the volume is mounted on this worker (--grow-fs)");
    expect(grow.stdout).toMatch(/^Plan: 1 volume to grow: mail to 300G on vg_cluster; .*the filesystem grown where it is mounted \(--grow-fs\); nothing destroyed\.$/m);
    const plain = await enssib(['volume', 'resize', 'mail', '300G', '-n'], { env });
    expect(plain.stdout).not.toMatch(/resize2fs|xfs_growfs/);
    expect(plain.stdout).toContain('the filesystem left as it is (without --grow-fs)');
  });
  it('delete lists the map flush with its condition and says the data will be destroyed and that --yes will be needed', async () => {
    const r = await enssib(['volume', 'delete', 'mail', '-n'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/multipath -f "\$1"; fi' flush-map '<map of the volume>' {3}# only if the worker has a multipath map of the volume/);
    expect(r.stdout).toContain('Plan: 1 volume to DESTROY: mail — LV vg_cluster/mail and ALL ITS DATA; its exports on data1, data2; the target on 3 workers.');
    expect(r.stdout).toContain('without a terminal it needs --yes');
  });
  it('the same command prints the same plan: no lock token, pid or time in a client dry run', async () => {
    for (const args of [
      ['volume', 'resize', 'mail', '300G', '--grow-fs', '-n'],
      ['volume', 'delete', 'mail', '-n'],
    ]) {
      const [a, b] = [await enssib(args, { env }), await enssib(args, { env })];
      expect(a.stdout).toBe(b.stdout);
      expect(a.stdout).toContain("'token=<token> user=");
      expect(a.stdout).toContain('pid=<pid> since=<time> command=enssib');
    }
  });
  it('create ends with its summary, in text and in JSON', async () => {
    const r = await enssib(['volume', 'create', 'mail', '200G', '--pv', '-n'], { env });
    expect(r.stdout.trimEnd().split('\n').pop()).toBe('Plan: 1 volume to create: mail, 200G on vg_cluster (ext4); exported by 2 storage servers (data1, data2); 3 workers; 1 PersistentVolume; nothing destroyed.');
    const j = await enssib(['volume', 'create', 'mail', '200G', '-n', '-o', 'json'], { env });
    expect((JSON.parse(j.stdout) as { summary: string }).summary).toMatch(/^Plan: 1 volume to create: mail/);
  });
});

describe('small ones', () => {
  it('enssib help exits 0 like --help; help <command> and help <topic>', async () => {
    const r = await enssib(['help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe((await enssib(['--help'])).stdout);
    const cmd = await enssib(['help', 'volume', 'create']);
    expect(cmd.code).toBe(0);
    expect(cmd.stdout).toBe((await enssib(['volume', 'create', '--help'])).stdout);
    const bad = await enssib(['help', 'volumes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no help on "volumes"[\s\S]*Topics: exit-codes, inventory, hazards, sizes/);
  });
  it('doctor --host "" and --host with an empty name are usage errors', async () => {
    for (const v of ['', ',', 'data1,,data2']) {
      const r = await enssib(['doctor', '--host', v, '-n']);
      expect(r.code, v).toBe(2);
      expect(r.stderr).toMatch(/^error: --host (is empty|".*" has an empty host name)/m);
      expect(r.stdout).toBe('');
    }
  });
  it('-i "" is a usage error, not ./inventory.yaml', async () => {
    const r = await enssib(['-i', '', 'inventory', 'check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('the inventory path is empty');
    expect(r.stdout).toBe('');
  });
  it('--dry-run=clinet names the two modes and suggests one, never an internal option', async () => {
    const r = await enssib(['--dry-run=clinet', 'volume', 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --dry-run takes "client" or "server", not "clinet"\n  Did you mean --dry-run=client?');
    expect(r.stderr).not.toContain('dry-run-mode');
    expect((await enssib(['volume', 'list', '--dry-run=server', '-i', '/nonexistent.yaml'])).stderr).not.toContain('dry-run-mode');
  });
  it.each([
    ['192.168.66.0', 'network'],
    ['192.168.66.63', 'broadcast'],
  ])('service expose --ip %s (the %s address of the users network) is refused', async (ip, kind) => {
    const r = await enssib(['service', 'expose', 'www', '--ip', ip, '-n']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--ip ${ip} is the ${kind} address of the users' network 192.168.66.0/26`);
    expect(r.stderr).toContain('Choose an address from 192.168.66.1 to 192.168.66.62.');
  });
  it('image build without a service suggests image build, not image push', async () => {
    const r = await enssib(['image', 'build', '-n']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('enssib image build ldap mail');
    expect(r.stderr).not.toContain('image push');
  });
  it('--version prints the version and the commit it was built from (recorded by the build)', async () => {
    const r = await enssib(['--version']);
    expect(r.code).toBe(0);
    const built = JSON.parse(readFileSync(join(ROOT, 'dist', 'build-info.json'), 'utf8')) as { commit: string; modified: boolean };
    expect(built.commit).toMatch(/^[0-9a-f]{40}$/);
    execSync(`git cat-file -e ${built.commit}^{commit}`, { cwd: ROOT }); // a commit of this repository
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(r.stdout).toBe(`${version} (commit ${built.commit}${built.modified ? ' with uncommitted changes' : ''})`);
  });
});
