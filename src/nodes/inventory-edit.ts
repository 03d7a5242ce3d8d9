import { createTwoFilesPatch } from 'diff';
import ipaddr from 'ipaddr.js';
import { isMap, isSeq, parseDocument, type YAMLSeq } from 'yaml';
import { UsageError } from '../errors.js';
import { LABEL_KEY, LABEL_VALUE, type InventoryData } from '../inventory/schema.js';
import { validateName } from '../validate.js';

/**
 * Adding a worker to inventory.yaml: the new entry is written as one line
 * after the last entry of `hosts:`, in the flow style of the entries there,
 * so that every other byte of the file — comments, order, spacing — stays as
 * it was. The document is read with yaml's Document API for the positions and
 * read again after the edit to prove the result parses with the new host.
 */

export interface NewWorker {
  name: string;
  address: string;
  labels: Record<string, string>;
}

export interface InventoryEdit {
  /** The whole new file. */
  text: string;
  /** The pod /24 given to the worker. */
  podSubnet: string;
  /** A unified diff of the change. */
  diff: string;
}

/** A label given as key=value (`--label disk=ssd`), checked as Kubernetes checks it. */
export function parseLabel(arg: string): [string, string] {
  const eq = arg.indexOf('=');
  const key = eq < 0 ? arg : arg.slice(0, eq);
  const value = eq < 0 ? '' : arg.slice(eq + 1);
  const shown = JSON.stringify(arg.length > 80 ? `${arg.slice(0, 80)}…` : arg);
  if (eq < 0) throw new UsageError(`label ${shown} has no value`, ['Write a label as key=value, e.g. --label disk=ssd.']);
  if (!LABEL_KEY.test(key)) {
    throw new UsageError(`label ${shown}: "${key}" is not a valid Kubernetes label key`, ['A key is an optional DNS prefix and "/", then at most 63 letters, digits, "-", "_", ".", starting and ending with a letter or digit, e.g. disk or enssib.fr/disk.']);
  }
  if (!LABEL_VALUE.test(value)) {
    throw new UsageError(`label ${shown}: "${value}" is not a valid Kubernetes label value`, ['A value has at most 63 letters, digits, "-", "_", ".", starting and ending with a letter or digit (or is empty).']);
  }
  return [key, value];
}

/** Labels from repeated --label flags; a key given twice is refused. */
export function parseLabels(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const [k, v] = parseLabel(a);
    if (k in out) throw new UsageError(`label "${k}" is given twice`);
    out[k] = v;
  }
  return out;
}

/** Checks a new worker's address against the inventory: IPv4, inside the cluster network, not taken. */
export function checkNewAddress(inv: InventoryData, address: string): string {
  if (!ipaddr.IPv4.isValidFourPartDecimal(address)) throw new UsageError(`address ${JSON.stringify(address.slice(0, 40))} is not an IPv4 address`, ['Give the worker\'s address on the cluster network, e.g. --address 10.66.6.14.']);
  const cluster = inv.networks.cluster.cidr;
  const parsed = ipaddr.IPv4.parse(address);
  if (!parsed.match(ipaddr.IPv4.parseCIDR(cluster))) throw new UsageError(`address ${address} is outside the cluster network ${cluster}`, ['A worker is reached on the cluster network (networks.cluster.cidr).']);
  const [net, len] = ipaddr.IPv4.parseCIDR(cluster);
  const broadcast = ipaddr.IPv4.broadcastAddressFromCIDR(cluster).toString();
  if (len < 31 && (address === net.toString() || address === broadcast)) throw new UsageError(`address ${address} is the network or broadcast address of ${cluster}`);
  const owner = inv.hosts.find((h) => h.address === address);
  if (owner) throw new UsageError(`address ${address} is already used by "${owner.name}"`);
  for (const [what, ip] of [['nfs.vip', inv.nfs?.vip], ['nodes.gateway', inv.nodes?.gateway]] as const) {
    if (ip === address) throw new UsageError(`address ${address} is already used: it is ${what}`);
  }
  return address;
}

/** The first /24 of the pods network that no host owns. */
export function nextPodSubnet(inv: InventoryData): string {
  const [net, len] = ipaddr.IPv4.parseCIDR(inv.networks.pods);
  if (len > 24) throw new UsageError(`the pods network ${inv.networks.pods} is smaller than a /24: no pod subnet can be given`);
  const taken = new Set(inv.hosts.flatMap((h) => (h.podSubnet ? [h.podSubnet] : [])));
  const base = net.toByteArray().reduce((a, b) => a * 256 + b, 0);
  const count = 2 ** (24 - len);
  // the first /24 (x.y.0.0/24) is kept free, as the site numbers node01 → .1.0/24
  for (let i = count > 1 ? 1 : 0; i < count; i++) {
    const n = base + i * 256;
    const s = `${[24, 16, 8, 0].map((sh) => Math.floor(n / 2 ** sh) % 256).join('.')}/24`;
    if (!taken.has(s)) return s;
  }
  throw new UsageError(`no free pod /24 left in ${inv.networks.pods}: every one is owned by a worker`, ['Remove a worker that is gone from the inventory, or widen networks.pods.']);
}

/** The flow-style line of a new worker entry. */
function entryText(w: NewWorker, podSubnet: string): string {
  const scalar = (v: string) => (/^[A-Za-z0-9][A-Za-z0-9_./-]*$/.test(v) && !/^(true|false|null|yes|no|on|off|~)$/i.test(v) && !/^[0-9.]+$/.test(v) ? v : JSON.stringify(v));
  const labels = Object.entries(w.labels);
  const labelText = labels.length > 0 ? `, labels: { ${labels.map(([k, v]) => `${scalar(k)}: ${scalar(v)}`).join(', ')} }` : '';
  return `{ name: ${w.name}, address: ${w.address}, roles: [worker], podSubnet: ${podSubnet}${labelText} }`;
}

/**
 * The inventory text with the worker added at the end of `hosts:`, and the
 * diff. `inv` is the validated inventory read from `text`.
 */
export function addWorker(text: string, inv: InventoryData, w: NewWorker, file = 'inventory.yaml'): InventoryEdit {
  validateName('host', w.name);
  if (inv.hosts.some((h) => h.name === w.name)) throw new UsageError(`host "${w.name}" is already in the inventory`);
  checkNewAddress(inv, w.address);
  Object.entries(w.labels).forEach(([k, v]) => parseLabel(`${k}=${v}`));
  const podSubnet = nextPodSubnet(inv);

  const doc = parseDocument(text, { keepSourceTokens: true });
  const hosts = isMap(doc.contents) ? doc.contents.get('hosts', true) : undefined;
  if (!isSeq(hosts) || hosts.items.length === 0) throw new UsageError(`${file}: "hosts:" is not a list this edit can extend`);
  const seq = hosts as YAMLSeq;
  const last = seq.items[seq.items.length - 1] as { range?: [number, number, number] } | undefined;
  const [start, end] = last?.range ?? [];
  if (seq.flow || start === undefined || end === undefined) throw new UsageError(`${file}: "hosts:" is written as one flow list; add the worker yourself, or write hosts as a block list ("- { name: … }" lines)`);
  const lineStart = text.lastIndexOf('\n', start - 1) + 1;
  const dash = /^( *)- *$/.exec(text.slice(lineStart, start));
  if (!dash) throw new UsageError(`${file}: the last entry of "hosts:" does not start its own line; add the worker yourself`);
  const nl = text.indexOf('\n', end);
  const at = nl < 0 ? text.length : nl + 1;
  const item = `${dash[1]}- ${entryText(w, podSubnet)}\n`;
  const next = nl < 0 ? `${text}\n${item}` : text.slice(0, at) + item + text.slice(at);

  const check = parseDocument(next);
  const added = check.errors.length === 0 ? (check.toJS() as { hosts?: { name?: string }[] }).hosts?.some((h) => h.name === w.name) : false;
  if (!added) throw new UsageError(`${file}: the worker could not be added without changing the rest of the file; add it yourself:`, [item.trim()]);
  return { text: next, podSubnet, diff: createTwoFilesPatch(file, file, text, next, '', '', { context: 2 }) };
}
