import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import type { Plan } from '../../../src/engine/types.js';
import { bootstrapPlan, fanOutLater, NETWORK_FILE, NETWORK_UNIT_FILE } from '../../../src/nodes/bootstrap.js';
import { nodeTemplates } from '../../../src/nodes/usecases.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { sshPool } from '../../../src/remote/pool.js';
import { volumeLab } from './volume-lab.js';

/**
 * The route fan-out of `enssib node bootstrap` over real OpenSSH (hosts lab):
 * node03 plays the new worker, and every other worker gets exactly one route
 * to its pod /24, applied and persisted (written for real: the containers run
 * no systemd-networkd, as an ifupdown host, so enssib's own unit keeps the
 * routes). The containers may not change their routes: `ip` is the hosts
 * lab's STAND-IN (stand-ins/ip.sh), which keeps each host's routing table in a
 * file and replaces a route as the kernel does; they run no systemd:
 * `systemctl` is a STAND-IN too (stand-ins/systemctl.sh, records enable). Only the fan-out
 * phase of the plan runs here: the new worker's own phases (apt, modules,
 * MTU) need a real machine and are the kernel lab's.
 */
const v = volumeLab();
const IP = join(import.meta.dirname, 'stand-ins', 'ip.sh');
const SYSTEMCTL = join(import.meta.dirname, 'stand-ins', 'systemctl.sh');
const IP_STATE = '/var/lib/enssib-stand-in/ip';
const NEW = 'node03';

const invFile = () => v.lab.variant((t) => `${t}nodes:\n  interface: eth1\n  apt: { url: "http://127.0.0.1:1/k8s/", key: k8s.gpg }\n`);
const workers = () => v.lab.inventory().workers();

/** Each worker's table as the site has it before node03 joins: default route, the cluster network, no route to node03's pods. */
function seed(): void {
  for (const w of workers()) {
    v.exec(w.name, `mkdir -p ${IP_STATE}; rm -rf ${NETWORK_FILE} ${NETWORK_UNIT_FILE} /var/lib/enssib-stand-in/systemctl`);
    v.writeFile(w.name, `${IP_STATE}/addr.json`, JSON.stringify([{ ifindex: 2, ifname: 'eth1', mtu: 9000, operstate: 'UP', addr_info: [{ family: 'inet', local: w.address, prefixlen: 24 }] }]));
    v.writeFile(
      w.name,
      `${IP_STATE}/route.json`,
      JSON.stringify([
        { dst: 'default', gateway: '10.66.6.10', dev: 'eth1' },
        { dst: '10.66.6.0/24', dev: 'eth1', protocol: 'kernel', scope: 'link' },
        ...workers()
          .filter((o) => o.name !== w.name && o.name !== NEW)
          .map((o) => ({ dst: o.podSubnet, gateway: o.address, dev: 'eth1' })),
      ]),
    );
  }
}

/** The routes on a worker to `dst`, as its (stand-in) table lists them. */
function routesTo(host: string, dst: string): { dst: string; gateway?: string; dev: string }[] {
  const table = JSON.parse(v.exec(host, `cat ${IP_STATE}/route.json`)) as { dst: string; gateway?: string; dev: string }[];
  return table.filter((r) => r.dst === dst);
}

async function fanOut() {
  const inv = loadInventory({ path: invFile(), source: '--inventory' }, {});
  const full = bootstrapPlan({ inv, name: NEW, templates: nodeTemplates(), aptKey: Buffer.from('KEY'), registryCa: null, now: () => Date.now(), readyTimeoutS: 5 });
  const plan: Plan = { ...full, prefetch: [], phases: full.phases.filter((p) => p.id === 'fan-out') };
  const pool = sshPool(inv);
  try {
    return { inv, report: await runPlan(plan, { mode: 'apply', concurrency: 4, hosts: pool }) };
  } finally {
    await pool.closeAll();
  }
}

beforeAll(() => {
  for (const [file, tool] of [[IP, 'ip'], [SYSTEMCTL, 'systemctl']] as const) {
    copyFileSync(file, join(v.lab.standIns, tool));
    chmodSync(join(v.lab.standIns, tool), 0o755);
  }
  seed();
});

afterAll(() => {
  for (const tool of ['ip', 'systemctl']) rmSync(join(v.lab.standIns, tool), { force: true });
  for (const w of workers()) v.exec(w.name, `rm -rf ${IP_STATE} ${NETWORK_FILE} ${NETWORK_UNIT_FILE} /var/lib/enssib-stand-in/systemctl`);
});

describe('node bootstrap: the route fan-out on the hosts lab', () => {
  it('every existing worker gets exactly one route to the new /24, persisted; a second run changes nothing and leaves one', async () => {
    const me = v.lab.inventory().host(NEW);
    const others = workers().filter((w) => w.name !== NEW);
    expect(others.length).toBeGreaterThanOrEqual(2);
    const first = await fanOut();
    expect(first.report.exitCode, JSON.stringify(first.report.phases)).toBe(0);
    expect(first.report.phases[0]?.hosts.map((h) => [h.host, h.status])).toEqual(others.map((w) => [w.name, 'done']));
    for (const w of others) {
      expect(routesTo(w.name, me.podSubnet as string)).toEqual([{ dst: me.podSubnet, gateway: me.address, dev: 'eth1' }]);
      const unit = v.exec(w.name, `cat ${NETWORK_UNIT_FILE}`);
      expect(unit).toContain(`ExecStart=ip route replace ${me.podSubnet} via ${me.address} dev eth1`);
      expect(unit).toContain('ExecStart=ip link set dev eth1 mtu 9000');
      expect(v.exec(w.name, `test -e ${NETWORK_FILE} && echo networkd-file; grep -v "^is-" /var/lib/enssib-stand-in/systemctl/calls`)).toBe('daemon-reload\nenable enssib-cluster-network.service\n');
    }

    const second = await fanOut();
    expect(second.report.exitCode).toBe(0);
    expect(second.report.phases[0]?.hosts.map((h) => h.status)).toEqual(others.map(() => 'unchanged'));
    for (const w of others) expect(routesTo(w.name, me.podSubnet as string)).toHaveLength(1);
  });

  it('a stopped worker is reported with the command to run later; the others get their route; the run says partial (exit 3)', async () => {
    const me = v.lab.inventory().host(NEW);
    const [upName, downName] = workers().filter((w) => w.name !== NEW).map((w) => w.name);
    const up = { name: upName as string };
    const down = { name: downName as string };
    seed();
    v.lab.docker('stop', '-t', '1', `enssib-lab-${down.name}`);
    try {
      const { inv, report } = await fanOut();
      expect(report.exitCode).toBe(3);
      const hosts = report.phases[0]?.hosts ?? [];
      expect(hosts.find((h) => h.host === up.name)?.status).toBe('done');
      expect(hosts.find((h) => h.host === down.name)).toMatchObject({ status: 'failed', error: { message: expect.stringContaining(down.name) } });
      expect(routesTo(up.name, me.podSubnet as string)).toHaveLength(1);
      expect(fanOutLater(inv, NEW, down.name)).toEqual([
        `enssib node bootstrap ${NEW} --yes     (again, once ${down.name} is back: only what is missing is done)`,
        `or on ${down.name}: ip route replace ${me.podSubnet} via ${me.address} dev eth1`,
      ]);
    } finally {
      v.lab.restore();
    }
    // once it is back (up.sh may have made its container anew: its table is seeded again), the same run gives it its one route
    seed();
    const again = await fanOut();
    expect(again.report.exitCode).toBe(0);
    expect(routesTo(down.name, me.podSubnet as string)).toEqual([{ dst: me.podSubnet, gateway: me.address, dev: 'eth1' }]);
  });
});
