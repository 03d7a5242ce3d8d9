import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type * as Yaml from 'yaml';
import type { Document, LineCounter } from 'yaml';
import { ConfigError } from '../errors.js';
import { removedApi } from '../k8s/removed.js';
import { at, isRecord, records, str, type KObject } from '../k8s/types.js';
import { requireCjs } from '../require.js';

const { isMap, LineCounter: LineCounterClass, parseAllDocuments } = requireCjs('yaml') as typeof Yaml;

/** One Kubernetes object read from a service folder, with where it was written. */
export interface Manifest {
  /** Path of the YAML file. */
  file: string;
  /** Line where the document starts (1-based). */
  line: number;
  object: KObject;
  /** The line of a field inside the object (falls back to the document's line). */
  lineOf(path: (string | number)[]): number;
}

/** A manifest file larger than this is not a hand-written Kubernetes object. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Every YAML file of a service folder except enssib.yaml, in name order. */
export function manifestFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isFile() && !d.name.startsWith('.') && /\.ya?ml$/i.test(d.name) && !/^enssib\.ya?ml$/i.test(d.name))
      .map((d) => d.name);
  } catch (e) {
    throw new ConfigError(`${dir}: cannot read the service folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return names.sort().map((n) => join(dir, n));
}

/** Reads and checks every Kubernetes object of a service folder. */
export function readManifests(dir: string): Manifest[] {
  const all = manifestFiles(dir).flatMap((file) => {
    const size = statSync(file).size;
    if (size > MAX_MANIFEST_BYTES) throw new ConfigError(`${file}: ${(size / 1024 / 1024).toFixed(1)} MiB is too large for a Kubernetes manifest (at most 1 MiB)`);
    return parseManifests(readFileSync(file, 'utf8'), file);
  });
  checkDuplicates(all);
  return all;
}

/** Parses the YAML documents of one file into checked Kubernetes objects. */
export function parseManifests(text: string, file: string): Manifest[] {
  const lc = new LineCounterClass();
  const parsed = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const out: Manifest[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      const lines = doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
        return `${file}:${pos.line}:${pos.col}: YAML syntax error: ${e.message.split('\n')[0]}`;
      });
      throw new ConfigError(lines[0] as string, lines.slice(1));
    }
    if (doc.contents === null) continue;
    const start = doc.contents.range?.[0] ?? 0;
    const line = lc.linePos(start).line;
    const where = `${file}:${line}`;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    if (!isRecord(value) || !isMap(doc.contents)) throw new ConfigError(`${where}: expected a Kubernetes object (a mapping with apiVersion, kind and metadata.name), found ${Array.isArray(value) ? 'a list' : JSON.stringify(value).slice(0, 40)}`);
    const lineOf = (path: (string | number)[]): number => {
      for (let n = path.length; n > 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        const pair = n === path.length ? findKeyLine(doc, path, lc) : undefined;
        if (pair !== undefined) return pair;
        if (node && node.range) return lc.linePos(node.range[0]).line;
      }
      return line;
    };
    const kind = value.kind;
    const apiVersion = value.apiVersion;
    if (typeof kind !== 'string' || kind === '') throw new ConfigError(`${where}: this object has no kind`, ['Every Kubernetes object needs apiVersion, kind and metadata.name.']);
    if (typeof apiVersion !== 'string' || apiVersion === '') throw new ConfigError(`${where}: the ${kind} has no apiVersion`, ['Every Kubernetes object needs apiVersion, kind and metadata.name.']);
    if (kind === 'List' || kind.endsWith('List')) throw new ConfigError(`${where}: a ${kind} is not applied as such; write each object as its own YAML document (separated by ---)`);
    const md = value.metadata;
    const name = isRecord(md) ? md.name : undefined;
    if (typeof name !== 'string' || name === '') {
      throw new ConfigError(`${where}: the ${kind} has no metadata.name`, isRecord(md) && typeof md.generateName === 'string' ? ['generateName cannot be applied: give the object a fixed name.'] : []);
    }
    const m: Manifest = { file, line, object: value as unknown as KObject, lineOf };
    checkManifest(m);
    out.push(m);
  }
  return out;
}

function findKeyLine(doc: Document.Parsed, path: (string | number)[], lc: LineCounter): number | undefined {
  const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
  if (!isMap(parent)) return undefined;
  const key = path[path.length - 1];
  const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
  const range = (pair?.key as { range?: [number, number, number] } | null)?.range;
  return range ? lc.linePos(range[0]).line : undefined;
}

/** Rules a manifest must follow before anything is contacted. */
export function checkManifest(m: Manifest): void {
  const o = m.object;
  const where = (path: (string | number)[]) => `${m.file}:${m.lineOf(path)}`;
  const name = o.metadata.name;
  const removed = removedApi(o.apiVersion, o.kind);
  if (removed) {
    throw new ConfigError(
      `${where(['apiVersion'])}: ${o.kind} "${name}" uses ${o.apiVersion}, which Kubernetes no longer serves (removed in ${removed.removedIn}); use ${removed.apiVersion}`,
      removed.notes,
    );
  }
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    throw new ConfigError(`${where(['metadata', 'name'])}: ${o.kind} name ${JSON.stringify(name.slice(0, 80))} is not valid`, ['Use lowercase letters, digits, "-" and ".", starting and ending with a letter or digit.']);
  }
  if (o.kind === 'Service' && o.apiVersion === 'v1' && (name.length > 63 || !DNS_1035.test(name))) {
    throw new ConfigError(`${where(['metadata', 'name'])}: Service name ${JSON.stringify(name)} is not valid`, ['A Service name is a DNS-1035 label: lowercase letters, digits and "-", starting with a letter, at most 63 characters.']);
  }
  const ns = o.metadata.namespace;
  if (ns !== undefined && (typeof ns !== 'string' || ns.length > 63 || !DNS_LABEL.test(ns))) {
    throw new ConfigError(`${where(['metadata', 'namespace'])}: namespace ${JSON.stringify(ns)} is not valid`);
  }
  if (o.apiVersion === 'apps/v1' && ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].includes(o.kind)) checkWorkload(m, where);
}

function checkWorkload(m: Manifest, where: (path: (string | number)[]) => string): void {
  const o = m.object;
  const what = `${o.kind} "${o.metadata.name}"`;
  const selector = at(o, 'spec', 'selector');
  const labels = at(o, 'spec', 'template', 'metadata', 'labels');
  const tl: Record<string, string> = isRecord(labels) ? Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])) : {};
  if (!isRecord(selector)) {
    throw new ConfigError(`${where(['spec'])}: ${what} has no spec.selector`, [
      `apps/v1 requires it; it is immutable once created. For these pod labels write:`,
      `  selector: { matchLabels: ${JSON.stringify(tl)} }`,
    ]);
  }
  const ml = isRecord(selector.matchLabels) ? selector.matchLabels : {};
  const exprs = records(selector.matchExpressions);
  if (Object.keys(ml).length === 0 && exprs.length === 0) throw new ConfigError(`${where(['spec', 'selector'])}: ${what} has an empty selector`);
  const bad = Object.entries(ml).filter(([k, v]) => tl[k] !== String(v));
  const badExpr = exprs.filter((e) => {
    const key = str(e.key) ?? '';
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    const v = tl[key];
    switch (e.operator) {
      case 'In':
        return v === undefined || !values.includes(v);
      case 'NotIn':
        return v !== undefined && values.includes(v);
      case 'Exists':
        return v === undefined;
      case 'DoesNotExist':
        return v !== undefined;
      default:
        return true;
    }
  });
  if (bad.length > 0 || badExpr.length > 0) {
    const shown = [...bad.map(([k, v]) => `${k}=${String(v)}`), ...badExpr.map((e) => `${str(e.key) ?? '?'} ${str(e.operator) ?? '?'} ${JSON.stringify(e.values ?? [])}`)];
    throw new ConfigError(`${where(['spec', 'selector'])}: the selector of ${what} does not match its pod template's labels`, [
      `selector terms not satisfied: ${shown.join(', ')}`,
      `spec.template.metadata.labels: ${JSON.stringify(tl)}`,
      'The selector picks the pods the workload owns; it must match the labels of the pods it creates.',
    ]);
  }
  const containers = at(o, 'spec', 'template', 'spec', 'containers');
  if (!Array.isArray(containers) || containers.length === 0) throw new ConfigError(`${where(['spec', 'template'])}: ${what} has no containers (spec.template.spec.containers)`);
  containers.forEach((c, i) => {
    if (!isRecord(c) || typeof c.name !== 'string' || c.name === '') throw new ConfigError(`${where(['spec', 'template', 'spec', 'containers', i])}: container ${i + 1} of ${what} has no name`);
    if (typeof c.image !== 'string' || c.image === '') throw new ConfigError(`${where(['spec', 'template', 'spec', 'containers', i])}: container "${c.name}" of ${what} has no image`);
  });
}

function checkDuplicates(all: Manifest[]): void {
  const seen = new Map<string, Manifest>();
  for (const m of all) {
    const o = m.object;
    const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
    const key = `${group}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    const first = seen.get(key);
    if (first) throw new ConfigError(`${m.file}:${m.line}: ${o.kind} "${o.metadata.name}" is defined twice`, [`first at ${first.file}:${first.line}`]);
    seen.set(key, m);
  }
}
