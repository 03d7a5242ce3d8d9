import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import type { RunReport } from '../../../src/engine/types.js';
import { ConnectionError } from '../../../src/errors.js';
import { parseInventory } from '../../../src/inventory/load.js';
import { bootstrapPlan, checkPlan, clockSkewMs, fanOutLater, parseJoinCommand, type BootstrapInput, type NodeApi } from '../../../src/nodes/bootstrap.js';
import { nodeTemplates } from '../../../src/nodes/usecases.js';
import { reportJson, planLines } from '../../../src/ui/report.js';
import { createOutput } from '../../../src/ui/output.js';
import { fakePool, type FakeHost } from '../../support/fake-hosts.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

const TEXT = `${VALID_INVENTORY.replace(
  '  - { name: node02, address: 10.66.6.12, roles: [worker], podSubnet: 10.100.2.0/24 }\n',
  '  - { name: node02, address: 10.66.6.12, roles: [worker], podSubnet: 10.100.2.0/24 }\n  - { name: node03, address: 10.66.6.13, roles: [worker], podSubnet: 10.100.3.0/24, labels: { disk: ssd }, taints: ["dedicated=db:NoSchedule"] }\n',
)}nodes:
  interface: eth1
  gateway: 10.66.6.20
  minimum: { memory: 4G, cpus: 2 }
  apt: { url: "http://10.66.6.1:8080/k8s/", suite: stable, components: [main], key: k8s.gpg }
`;
const TOKEN = 'abcdef.0123456789abcdef';
const HASH = `sha256:${'a'.repeat(64)}`;
const NOW = 1_760_000_000_000;

/** A Debian host as the plan's checks see it; the plan's commands change it. */
interface SimHost {
  os: string;
  mem: number;
  cpus: number;
  installed: Set<string>;
  /** apt-mark hold: dpkg-query says "hi", not "ii" */
  held: Set<string>;
  modules: Set<string>;
  sysctls: Record<string, string>;
  mtu: number;
  routes: { dst: string; gateway?: string; dev: string }[];
  swaps: string[];
  fstab: string;
  joined: boolean;
  containerd: boolean;
  hostname: string;
  udp: string;
  /** systemd-networkd manages eth1 (else ifupdown does, and enssib's unit keeps the settings). */
  networkd: boolean;
  unitEnabled: boolean;
  /** SCST's configuration in force (storage servers): the file as last applied. */
  scstRunning?: string;
}

function sim(name: string): SimHost {
  return {
    os: 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    mem: 8 * 1024 * 1024,
    cpus: 4,
    installed: new Set(['netbase']),
    held: new Set(),
    modules: new Set(['overlay']),
    sysctls: { 'net.ipv4.ip_forward': '0' },
    mtu: 1500,
    routes: [{ dst: 'default', gateway: '10.66.6.254', dev: 'eth1' }, { dst: '10.66.6.0/24', dev: 'eth1' }],
    swaps: ['/dev/sda3'],
    fstab: 'UUID=1 / ext4 defaults 0 1\n/dev/sda3 none swap sw 0 0\n',
    joined: false,
    containerd: false,
    hostname: name === 'node03' ? 'debian' : name,
    udp: 'CONFIG_NFS_DISABLE_UDP_SUPPORT=y\n',
    networkd: true,
    unitEnabled: false,
  };
}

function site(opts: { down?: string[]; text?: string; scst?: string; ifupdown?: string[] } = {}) {
  const hosts = new Map<string, SimHost>();
  const state = (h: string) => {
    let s = hosts.get(h);
    if (!s) hosts.set(h, (s = { ...sim(h), networkd: !opts.ifupdown?.includes(h) }));
    return s;
  };
  const pool = fakePool((h, argv) => respond(h, argv));
  const sha = (h: string, p: string) => {
    const c = pool.host(h).files.get(p);
    return c === undefined ? '' : `${createHash('sha256').update(c).digest('hex')}  -\n`;
  };
  function respond(h: string, argv: readonly string[]) {
    if (opts.down?.includes(h)) return new ConnectionError(h, "cannot reach it over ssh: Connection refused");
    const s = state(h);
    const a = argv.join(' ');
    const name = argv[3];
    if (argv[0] === 'sh' && name === 'enssib-hash') return { stdout: sha(h, argv[4] as string) };
    const scstFile = () => pool.host(h).files.get('/etc/scst.conf') ?? opts.scst ?? '';
    if (argv[0] === 'sh' && name === 'read-conf') return { stdout: scstFile() };
    if (argv[0] === 'sh' && name === 'scst-running') return { stdout: s.scstRunning ?? opts.scst ?? '' };
    if (a === 'stat -c %a %U:%G /etc/scst.conf') return { stdout: '600 root:root\n' };
    if (a === 'scstadmin -noprompt -config /etc/scst.conf') return void (s.scstRunning = scstFile());
    if (argv[0] === 'sh' && name === 'enssib-which') return {};
    if (argv[0] === 'sh' && name === 'enssib-keeper') return { stdout: `${s.networkd ? 'networkd' : 'other'}\n${s.unitEnabled ? 'enabled' : 'disabled'}\n` };
    if (a === 'systemctl enable enssib-cluster-network.service') return void (s.unitEnabled = true);
    if (argv[0] === 'sh' && name === 'enssib-dpkg') return { stdout: [...s.installed].map((p) => `${p} ${s.held.has(p) ? 'h' : 'i'}i \n`).join('') };
    if (argv[0] === 'sh' && name === 'enssib-modules') return { stdout: argv.slice(4).filter((m) => !s.modules.has(m)).map((m) => `${m}\n`).join('') };
    if (argv[0] === 'sh' && name === 'enssib-sysctl') return { stdout: argv.slice(4).map((k) => `${k}=${s.sysctls[k] ?? ''}\n`).join('') };
    if (argv[0] === 'sh' && name === 'enssib-modprobe') return void argv.slice(4).forEach((m) => s.modules.add(m));
    if (argv[0] === 'sh' && name === 'enssib-join') {
      s.joined = true;
      return {};
    }
    if (argv[0] === 'sh' && (argv[3] === 'enssib-arm' || argv[3] === 'enssib-disarm')) return {};
    if (a.startsWith('sh -c ss')) return { stdout: s.joined ? 'LISTEN 0 4096 *:10250 *:*\n' : '' };
    if (a.startsWith('sh -c f=/boot/config')) return { stdout: s.udp };
    switch (a) {
      case 'cat /etc/os-release':
        return { stdout: s.os };
      case 'dpkg --print-architecture':
        return { stdout: 'amd64\n' };
      case 'cat /proc/meminfo':
        return { stdout: `MemTotal:       ${s.mem} kB\nMemFree: 1 kB\n` };
      case 'nproc':
        return { stdout: `${s.cpus}\n` };
      case 'hostname':
        return { stdout: `${s.hostname}\n` };
      case 'date +%s.%N':
        return { stdout: `${NOW / 1000}.000000000\n` };
      case 'cat /proc/swaps':
        return { stdout: `Filename Type Size Used Priority\n${s.swaps.map((d) => `${d} partition 1 0 -2\n`).join('')}` };
      case 'cat /etc/fstab':
        return { stdout: s.fstab };
      case 'test -e /etc/kubernetes/kubelet.conf':
        return { exitCode: s.joined ? 0 : 1 };
      case 'systemctl is-active containerd':
        return { stdout: s.containerd ? 'active\n' : 'inactive\n', exitCode: s.containerd ? 0 : 3 };
      case 'ip -j addr show':
        return { stdout: JSON.stringify([{ ifname: 'eth1', mtu: s.mtu, operstate: 'UP', addr_info: [] }]) };
      case 'ip -j -4 route show table main':
        return { stdout: JSON.stringify(s.routes) };
      case 'swapoff -a':
        s.swaps = [];
        return {};
      case 'systemctl enable --now containerd':
        s.containerd = true;
        return {};
      case 'sysctl -q -p /etc/sysctl.d/90-enssib.conf':
        s.sysctls = { 'net.ipv4.ip_forward': '1', 'net.bridge.bridge-nf-call-iptables': '1' };
        return {};
      case 'kubeadm token create --print-join-command --ttl 15m':
        return { stdout: `kubeadm join 10.66.6.1:6443 --token ${TOKEN} --discovery-token-ca-cert-hash ${HASH} \n` };
    }
    if (argv[0] === 'sed' && argv.at(-1) === '/etc/fstab') {
      s.fstab = s.fstab.replace('/dev/sda3 none swap', '# swap off for kubelet (enssib): /dev/sda3 none swap');
      return {};
    }
    if (argv[0] === 'env' && argv.includes('install')) return void argv.slice(7).forEach((p) => s.installed.add(p));
    if (argv[0] === 'hostnamectl') return void (s.hostname = argv[2] as string);
    if (a.startsWith('ip link set dev eth1 mtu ')) return void (s.mtu = Number(argv.at(-1)));
    if (a.startsWith('ip route replace ')) {
      const [dst, , via, , dev] = argv.slice(3) as string[];
      s.routes = [...s.routes.filter((r) => r.dst !== dst), { dst: dst as string, gateway: via as string, dev: dev as string }];
      return {};
    }
    if (argv[0] === 'apt-mark' && argv[1] === 'hold') return void argv.slice(2).forEach((p) => s.held.add(p));
    if (['apt-get', 'apt-mark', 'systemctl'].includes(argv[0] as string)) return {};
    return new Error(`unexpected command on ${h}: ${a}`);
  }
  const inv = parseInventory(opts.text ?? TEXT, '/site/inventory.yaml', {});
  const labelled: string[] = [];
  const api: NodeApi = {
    settled: async (n) => labelled.includes(n),
    label: async (n) => void labelled.push(n),
    waitReady: async () => undefined,
  };
  const input = (name = 'node03'): BootstrapInput => ({ inv, name, templates: nodeTemplates(), aptKey: Buffer.from('KEY'), registryCa: '-----BEGIN CERTIFICATE-----\n', now: () => NOW, readyTimeoutS: 5, api: async () => api });
  return { pool, state, input, labelled, inv };
}

/** What a host was told to do (not the checks, not the connection warm-up `true`). */
const commands = (h: FakeHost) => h.calls.filter((c) => !['true', 'cat', 'dpkg', 'nproc', 'hostname', 'date', 'test'].includes(c[0] as string) && !(c[0] === 'sh' && ['enssib-hash', 'enssib-which', 'enssib-dpkg', 'enssib-modules', 'enssib-sysctl', 'read-conf', 'scst-running', 'enssib-keeper'].includes(c[3] as string)) && c[0] !== 'stat' && !c.join(' ').startsWith('sh -c ss') && !c.join(' ').startsWith('sh -c f=/boot') && !c.join(' ').startsWith('ip -j') && !c.join(' ').startsWith('systemctl is-'));
const statuses = (r: RunReport) => r.phases.map((p) => `${p.id}:${p.hosts.map((h) => h.status).join(',')}`);

describe('node bootstrap plan', () => {
  it('prepares the worker, routes it everywhere, joins it; a second run is unchanged everywhere', async () => {
    const s = site();
    const first = await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(first.exitCode, JSON.stringify(first.phases.flatMap((p) => p.hosts.map((h) => h.error?.message)).filter(Boolean))).toBe(0);
    const n3 = s.state('node03');
    expect(n3).toMatchObject({ hostname: 'node03', swaps: [], mtu: 9000, joined: true, containerd: true });
    expect(n3.fstab).toContain('# swap off for kubelet (enssib): /dev/sda3');
    expect([...n3.installed].sort()).toEqual(['containerd', 'kubeadm', 'kubelet', 'multipath-tools', 'netbase', 'nfs-common', 'open-iscsi', 'runc']);
    expect(n3.routes).toEqual(expect.arrayContaining([{ dst: 'default', gateway: '10.66.6.20', dev: 'eth1' }, { dst: '10.100.1.0/24', gateway: '10.66.6.11', dev: 'eth1' }, { dst: '10.100.2.0/24', gateway: '10.66.6.12', dev: 'eth1' }]));
    for (const w of ['node01', 'node02']) expect(s.state(w).routes.filter((r) => r.dst === '10.100.3.0/24')).toEqual([{ dst: '10.100.3.0/24', gateway: '10.66.6.13', dev: 'eth1' }]);
    const files = s.pool.host('node03').files;
    expect(files.get('/etc/apt/sources.list.d/enssib-kubernetes.list')).toContain('deb [signed-by=/etc/apt/keyrings/enssib-kubernetes.gpg] http://10.66.6.1:8080/k8s/ stable main');
    expect(files.get('/etc/iscsi/initiatorname.iscsi')).toContain('InitiatorName=iqn.2016-04.fr.enssib:node03');
    expect(files.get('/etc/nfsmount.conf')).toMatch(/Proto=tcp\n[\s\S]*timeo=100\nretrans=3/);
    expect(files.get('/etc/containerd/certs.d/registry.cluster.enssib.fr:5000/ca.crt')).toBe('-----BEGIN CERTIFICATE-----\n');
    const net = files.get('/etc/systemd/network/05-enssib-cluster.network') ?? '';
    expect(net).toContain('Name=eth1\n');
    expect(net).toContain('MTUBytes=9000');
    expect(net).toContain('Address=10.66.6.13/24\nGateway=10.66.6.20');
    expect(net.match(/\[Route\]/g)).toHaveLength(2);
    expect(s.pool.host('node01').files.get('/etc/systemd/network/05-enssib-cluster.network')).toContain('Destination=10.100.3.0/24\nGateway=10.66.6.13');
    // handlers ran once each, because their files changed
    const cmds = commands(s.pool.host('node03')).map((c) => c.join(' '));
    for (const svc of ['iscsid', 'multipathd', 'containerd']) expect(cmds.filter((c) => c === `systemctl restart ${svc}`)).toHaveLength(1);
    // the rollback timer armed before the MTU and default-route change, disarmed after it
    const arm = cmds.findIndex((c) => c.includes('enssib-arm'));
    const disarm = cmds.findIndex((c) => c.includes('enssib-disarm'));
    expect(arm).toBeLessThan(cmds.indexOf('ip link set dev eth1 mtu 9000'));
    expect(disarm).toBeGreaterThan(cmds.indexOf('ip route replace default via 10.66.6.20 dev eth1'));
    expect(cmds.find((c) => c.includes('enssib-arm'))).toContain('ip link set dev eth1 mtu 1500; ip route replace default via 10.66.6.254 dev eth1');
    expect(s.labelled).toEqual(['node03']);
    // the token never leaves: not in the report, its JSON, nor any command line
    const json = JSON.stringify(reportJson(first));
    expect(json).not.toContain(TOKEN);
    expect(json).not.toContain(HASH);
    expect(cmds.join('\n')).not.toContain(TOKEN);

    for (const h of ['node01', 'node02', 'node03', 'data1', 'data2']) s.pool.host(h).calls.length = 0;
    const second = await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(second.exitCode).toBe(0);
    expect(statuses(second)).toEqual(['facts:unchanged', 'preflight:unchanged', 'packages:unchanged', 'kernel:unchanged', 'network:unchanged', 'fan-out:unchanged,unchanged', 'storage:unchanged', 'initiator-acl:unchanged,unchanged', 'registry:unchanged', 'join-token:unchanged', 'join:unchanged', 'ready:unchanged']);
    for (const h of ['node01', 'node02', 'node03', 'data1', 'data2']) expect(commands(s.pool.host(h))).toEqual([]);

    const check = await runPlan(checkPlan(s.input(), { drift: [] }), { mode: 'server', concurrency: 4, hosts: s.pool });
    expect(statuses(check)).toEqual(['facts:unchanged', 'preflight:unchanged', 'packages:unchanged', 'kernel:unchanged', 'network:unchanged', 'fan-out:unchanged,unchanged', 'storage:unchanged', 'initiator-acl:unchanged,unchanged', 'registry:unchanged', 'join:unchanged', 'ready:unchanged']);
  });

  it('volume targets with access groups: the new initiator is added on both storage servers, applied, once; nothing else in the file moves', async () => {
    const conf = `# kept by hand\nTARGET_DRIVER iscsi {\n\tenabled 1\n\tTARGET iqn.2016-04.fr.enssib:mail {\n\t\tenabled 1\n\t\tGROUP workers {\n\t\t\tLUN 0 mail\n\t\t\tINITIATOR iqn.2016-04.fr.enssib:node01 # first\n\t\t}\n\t}\n}\n`;
    const s = site({ scst: conf });
    const first = await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(first.exitCode).toBe(0);
    expect(first.phases.find((p) => p.id === 'initiator-acl')?.hosts.map((h) => [h.host, h.status])).toEqual([
      ['data1', 'done'],
      ['data2', 'done'],
    ]);
    const want = conf.replace('# first\n', '# first\n\t\t\tINITIATOR iqn.2016-04.fr.enssib:node03\n');
    for (const h of ['data1', 'data2']) {
      expect(s.pool.host(h).files.get('/etc/scst.conf')).toBe(want);
      expect(s.state(h).scstRunning).toBe(want);
      expect(commands(s.pool.host(h)).map((c) => c.join(' '))).toContain('scstadmin -noprompt -config /etc/scst.conf');
    }
    for (const h of ['data1', 'data2']) s.pool.host(h).calls.length = 0;
    const second = await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(second.phases.find((p) => p.id === 'initiator-acl')?.hosts.map((h) => h.status)).toEqual(['unchanged', 'unchanged']);
    expect(commands(s.pool.host('data2'))).toEqual([]);
  });

  it('where ifupdown (not systemd-networkd) manages the interface: enssib\'s own unit keeps MTU and routes, enabled; no networkd file; a second run is unchanged', async () => {
    const s = site({ ifupdown: ['node03', 'node01'] });
    const first = await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(first.exitCode).toBe(0);
    const unit = s.pool.host('node03').files.get('/etc/systemd/system/enssib-cluster-network.service') ?? '';
    expect(unit).toContain('[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=ip link set dev eth1 mtu 9000\nExecStart=ip route replace default via 10.66.6.20 dev eth1\n');
    expect(unit).toContain("# node01's pods\nExecStart=ip route replace 10.100.1.0/24 via 10.66.6.11 dev eth1\n");
    expect(unit).toContain('After=network-online.target');
    expect(unit).toContain('[Install]\nWantedBy=multi-user.target\n');
    expect(s.pool.host('node03').files.has('/etc/systemd/network/05-enssib-cluster.network')).toBe(false);
    const cmds = commands(s.pool.host('node03')).map((c) => c.join(' '));
    expect(cmds.indexOf('systemctl daemon-reload')).toBeLessThan(cmds.indexOf('systemctl enable enssib-cluster-network.service'));
    expect(s.state('node03').unitEnabled).toBe(true);
    // the fan-out: node01 (ifupdown) gets the route in its unit, node02 (networkd) in its networkd file
    expect(s.pool.host('node01').files.get('/etc/systemd/system/enssib-cluster-network.service')).toContain('ExecStart=ip route replace 10.100.3.0/24 via 10.66.6.13 dev eth1');
    expect(s.pool.host('node01').files.has('/etc/systemd/network/05-enssib-cluster.network')).toBe(false);
    expect(s.pool.host('node02').files.get('/etc/systemd/network/05-enssib-cluster.network')).toContain('Destination=10.100.3.0/24');
    for (const h of ['node01', 'node02', 'node03']) s.pool.host(h).calls.length = 0;
    const second = await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(statuses(second).filter((x) => x.startsWith('network') || x.startsWith('fan-out'))).toEqual(['network:unchanged', 'fan-out:unchanged,unchanged']);
    for (const h of ['node01', 'node02', 'node03']) expect(commands(s.pool.host(h))).toEqual([]);
    // a unit disabled by hand is drift, and only the enable is planned
    s.state('node03').unitEnabled = false;
    const check = await runPlan(checkPlan(s.input()), { mode: 'server', concurrency: 4, hosts: s.pool });
    expect(check.phases.find((p) => p.id === 'network')?.hosts[0]).toMatchObject({ status: 'would-change', actions: ['systemctl enable enssib-cluster-network.service'] });
  });

  it('a worker that is down gets no route; the others do, the run says partial, and what to run later is named', async () => {
    const s = site({ down: ['node02'] });
    const r = await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(r.exitCode).toBe(3);
    const fan = r.phases.find((p) => p.id === 'fan-out');
    expect(fan?.hosts.map((h) => [h.host, h.status])).toEqual([
      ['node01', 'done'],
      ['node02', 'failed'],
    ]);
    expect(s.state('node03').joined).toBe(true);
    expect(fanOutLater(s.inv, 'node03', 'node02')).toEqual(['enssib node bootstrap node03 --yes     (again, once node02 is back: only what is missing is done)', 'or on node02: ip route replace 10.100.3.0/24 via 10.66.6.13 dev eth1']);
  });

  it('node check reports drift per phase — the worker, the fan-out on each other worker, the storage servers, the Node — and changes nothing', async () => {
    const s = site();
    const r = await runPlan(checkPlan(s.input(), { drift: ['no Node node03 in the cluster (not joined)'] }), { mode: 'server', concurrency: 4, hosts: s.pool });
    expect(statuses(r)).toEqual(['facts:would-change', 'preflight:would-change', 'packages:would-change', 'kernel:would-change', 'network:would-change', 'fan-out:would-change,would-change', 'storage:would-change', 'initiator-acl:unchanged,unchanged', 'registry:would-change', 'join:would-change', 'ready:would-change']);
    expect(r.phases.find((p) => p.id === 'fan-out')?.hosts[0]?.actions).toContain('ip route replace 10.100.3.0/24 via 10.66.6.13 dev eth1');
    expect(r.phases.find((p) => p.id === 'ready')?.hosts[0]?.actions.join('\n')).toContain('no Node node03 in the cluster (not joined)');
    for (const h of ['node01', 'node02', 'node03', 'data1', 'data2']) expect(commands(s.pool.host(h))).toEqual([]);
    expect(s.pool.host('node03').files.size).toBe(0);
    // one worker's route alone is drift there, and only there
    await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    s.state('node02').routes = s.state('node02').routes.filter((x) => x.dst !== '10.100.3.0/24');
    const one = await runPlan(checkPlan(s.input(), { drift: [] }), { mode: 'server', concurrency: 4, hosts: s.pool });
    expect(one.phases.filter((p) => p.hosts.some((h) => h.status !== 'unchanged')).map((p) => `${p.id}:${p.hosts.map((h) => `${h.host}=${h.status}`).join(',')}`)).toEqual(['fan-out:node01=unchanged,node02=would-change']);
  });

  it('refuses an OS that is not Debian, too little memory or CPUs, a skewed clock — before changing anything', async () => {
    const s = site();
    Object.assign(s.state('node03'), { os: 'ID=ubuntu\nPRETTY_NAME="Ubuntu 24.04"\n', mem: 1024 * 1024, cpus: 1 });
    const r = await runPlan(bootstrapPlan({ ...s.input(), now: () => NOW + 60_000 }), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(r.exitCode).toBe(1);
    expect(r.stoppedAt).toMatch(/^gather the facts of node03/);
    expect(r.findings.map((f) => f.found)).toEqual(['the OS is Ubuntu 24.04, not Debian', '1G of memory, below the minimum 4G', '1 CPU, below the minimum 2', "its clock is 60.0 s away from this machine's"]);
    expect(commands(s.pool.host('node03'))).toEqual([]);
  });

  it('counts as clock skew only what lies outside the time the facts took to come back (a slow link is not a wrong clock)', () => {
    const w = { from: 1_000_000, to: 1_008_000 };
    expect(clockSkewMs(1_004_000, w)).toBe(0);
    expect(clockSkewMs(1_000_000, w)).toBe(0);
    expect(clockSkewMs(997_000, w)).toBe(3000);
    expect(clockSkewMs(1_011_500, w)).toBe(3500);
    expect(clockSkewMs(Number.NaN, w)).toBe(Infinity);
  });

  it('refuses NFS over UDP on a kernel built without it, and explains', async () => {
    const s = site({ text: TEXT.replace('nfs: { vip: 10.66.6.10 }', 'nfs: { vip: 10.66.6.10, protocol: udp }') });
    const r = await runPlan(bootstrapPlan(s.input()), { mode: 'apply', concurrency: 4, hosts: s.pool });
    expect(r.stoppedAt).toMatch(/^storage initiator/);
    expect(r.findings.find((f) => f.check === 'storage')).toMatchObject({ found: 'nfs.protocol is udp, but this kernel is built with CONFIG_NFS_DISABLE_UDP_SUPPORT=y', fix: [expect.stringContaining('nfs.protocol: tcp')] });
  });

  it('a client dry run shows every command, the handlers and the join without its secret', async () => {
    const s = site();
    const r = await runPlan(bootstrapPlan(s.input()), { mode: 'client', concurrency: 4, hosts: s.pool });
    const text = planLines(r, createOutput({ format: 'text', color: false, verbose: false })).join('\n');
    expect(text).toContain('$ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends containerd runc open-iscsi multipath-tools nfs-common netbase kubelet kubeadm');
    expect(text).toContain('$ ip route replace 10.100.3.0/24 via 10.66.6.13 dev eth1   # only if the route to node03\'s pods is missing');
    expect(text).toContain('$ systemctl restart multipathd   # handler "multipathd": only if what notifies it changed');
    expect(text).toContain('$ kubeadm token create --print-join-command --ttl 15m   # only if node03 is not joined');
    expect(text).toContain('labels disk=ssd; taints dedicated=db:NoSchedule');
    // persistence: networkd's file or enssib's unit, each under its condition
    expect(text).toMatch(/write \/etc\/systemd\/network\/05-enssib-cluster\.network .*/);
    expect(text).toContain('$ systemctl enable enssib-cluster-network.service   # only if the unit is not enabled');
    for (const h of ['node01', 'node02', 'node03', 'data1', 'data2']) expect(s.pool.host(h).calls).toEqual([]);
  });

  it('reads only a join command in the form kubeadm prints', () => {
    expect(parseJoinCommand(`kubeadm join 10.66.6.1:6443 --token ${TOKEN} --discovery-token-ca-cert-hash ${HASH} \n`)).toEqual({ endpoint: '10.66.6.1:6443', token: TOKEN, caCertHash: HASH });
    expect(() => parseJoinCommand('error: no token')).toThrow(/printed no join command/);
    expect(() => parseJoinCommand(`kubeadm join 10.66.6.1:6443;reboot --token ${TOKEN} --discovery-token-ca-cert-hash ${HASH}`)).toThrow(/not in the form/);
  });
});
