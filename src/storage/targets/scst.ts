import { scstIdentity, type Identity } from '../identity.js';

/**
 * /etc/scst.conf as data. The tool is its one writer: it parses the file,
 * replaces or adds only the objects of the volume it manages (its vdisk_blockio
 * DEVICE and its iSCSI TARGET), keeps every other line byte for byte (other
 * devices, targets, driver attributes, comments, secrets), and applies the
 * result with `scstadmin -config`, which applies only the differences — so the
 * file on disk is always the state in force.
 *
 * Safety property of the renderer: a device enssib writes always carries
 * `nv_cache 0` and `write_through 1` (without them SCST acknowledges writes
 * that are still in a volatile cache, and data is corrupted on a failover), and
 * explicit `t10_dev_id`/`usn` derived from the volume's identity, identical on
 * both storage servers. The device spec has no field that could change that.
 */

export const SCST_CONF = '/etc/scst.conf';
export const SCST_HANDLER = 'vdisk_blockio';
export const SCST_DRIVER = 'iscsi';
/** The SCST vdisk name limit (name[16+1] before SCST 3.5; later versions allow 64): volume names stay within it. */
export const SCST_MAX_NAME = 16;

export type ScstItem = ScstRaw | ScstAttr | ScstSection;
export interface ScstRaw {
  kind: 'raw';
  text: string;
}
export interface ScstAttr {
  kind: 'attr';
  name: string;
  value: string;
  text: string;
}
export interface ScstSection {
  kind: 'section';
  keyword: string;
  args: string[];
  header: string;
  footer: string;
  items: ScstItem[];
}
export interface ScstConf {
  items: ScstItem[];
  /** The file ended with a newline (kept as it was). */
  finalNewline: boolean;
}

export class ScstConfError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`${SCST_CONF} line ${line}: ${message}`);
    this.line = line;
  }
}

/** The line without its comment: an unescaped "#" starts one (scst.conf(5)). */
function stripComment(line: string): string {
  let out = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === '\\' && line[i + 1] === '#') {
      out += '#';
      i++;
    } else if (ch === '#') break;
    else out += ch;
  }
  return out.trim();
}

/** Splits on blanks, keeping "double quoted values" together (quotes removed). */
function tokens(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? '');
  return out;
}

export function parseScstConf(text: string): ScstConf {
  const finalNewline = text.endsWith('\n');
  const lines = text === '' ? [] : (finalNewline ? text.slice(0, -1) : text).split('\n');
  const root: ScstItem[] = [];
  const stack: { section: ScstSection; line: number }[] = [];
  const current = () => (stack.length ? (stack[stack.length - 1] as { section: ScstSection }).section.items : root);
  lines.forEach((raw, i) => {
    const n = i + 1;
    const body = stripComment(raw);
    if (body === '') {
      current().push({ kind: 'raw', text: raw });
      return;
    }
    if (body === '}') {
      const open = stack.pop();
      if (!open) throw new ScstConfError(n, 'a "}" closes no section');
      open.section.footer = raw;
      return;
    }
    if (body.endsWith('{')) {
      const t = tokens(body.slice(0, -1));
      if (t.length === 0) throw new ScstConfError(n, 'a section has no name');
      const section: ScstSection = { kind: 'section', keyword: t[0] as string, args: t.slice(1), header: raw, footer: '}', items: [] };
      current().push(section);
      stack.push({ section, line: n });
      return;
    }
    if (body.includes('{') || body.includes('}')) throw new ScstConfError(n, `cannot read ${JSON.stringify(body)}`);
    const t = tokens(body);
    current().push({ kind: 'attr', name: t[0] as string, value: t.slice(1).join(' '), text: raw });
  });
  const open = stack.pop();
  if (open) throw new ScstConfError(open.line, `section "${open.section.keyword} ${open.section.args.join(' ')}" is never closed`);
  return { items: root, finalNewline };
}

function renderItems(items: ScstItem[], out: string[]): void {
  for (const it of items) {
    if (it.kind === 'raw' || it.kind === 'attr') out.push(it.text);
    else {
      out.push(it.header);
      renderItems(it.items, out);
      out.push(it.footer);
    }
  }
}

export function renderScstConf(conf: ScstConf): string {
  const out: string[] = [];
  renderItems(conf.items, out);
  if (out.length === 0) return '';
  return out.join('\n') + (conf.finalNewline ? '\n' : '');
}

// ---------------------------------------------------------------- queries

export function sections(items: ScstItem[], keyword: string, arg0?: string): ScstSection[] {
  return items.filter((i): i is ScstSection => i.kind === 'section' && i.keyword === keyword && (arg0 === undefined || i.args[0] === arg0));
}

export function attrs(s: ScstSection): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const i of s.items) if (i.kind === 'attr') m.set(i.name, [...(m.get(i.name) ?? []), i.value]);
  return m;
}

/** Every DEVICE of every HANDLER: the handler, the device section. */
export function devices(conf: ScstConf): { handler: string; device: ScstSection }[] {
  return sections(conf.items, 'HANDLER').flatMap((h) => sections(h.items, 'DEVICE').map((d) => ({ handler: h.args[0] ?? '', device: d })));
}

/** A LUN line: an attr "LUN 0 dev" or a section "LUN 0 dev {". */
function lunOf(i: ScstItem): { lun: string; device: string } | null {
  if (i.kind === 'attr' && i.name === 'LUN') {
    const [lun = '', device = ''] = tokens(i.value);
    return { lun, device };
  }
  if (i.kind === 'section' && i.keyword === 'LUN') return { lun: i.args[0] ?? '', device: i.args[1] ?? '' };
  return null;
}

/**
 * A target's LUNs: number → device, with the access group that sees it (null:
 * the target's default group, which every initiator allowed to log in sees).
 */
export function luns(target: ScstSection): { lun: string; device: string; group: string | null }[] {
  const out: { lun: string; device: string; group: string | null }[] = [];
  for (const i of target.items) {
    const l = lunOf(i);
    if (l) out.push({ ...l, group: null });
    else if (i.kind === 'section' && i.keyword === 'GROUP') {
      for (const g of i.items) {
        const gl = lunOf(g);
        if (gl) out.push({ ...gl, group: i.args[0] ?? '' });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- what enssib writes

/** What a volume's device is made of; nv_cache/write_through are not fields: the renderer always writes 0/1. */
export interface ScstVolume {
  name: string;
  filename: string;
  identity: Identity;
  iqn: string;
}

/** The attributes enssib sets on a device, in the order it writes them. */
export function deviceAttributes(v: ScstVolume): [string, string][] {
  const ids = scstIdentity(v.identity);
  return [
    ['filename', v.filename],
    ['nv_cache', '0'],
    ['write_through', '1'],
    ['t10_dev_id', ids.t10DevId],
    ['usn', ids.usn],
  ];
}

function indent(depth: number): string {
  return '\t'.repeat(depth);
}

function quoteValue(v: string): string {
  return /\s/.test(v) ? `"${v}"` : v;
}

function attr(depth: number, name: string, value: string): ScstAttr {
  return { kind: 'attr', name, value, text: `${indent(depth)}${name} ${quoteValue(value)}` };
}

function section(depth: number, keyword: string, args: string[], items: ScstItem[]): ScstSection {
  return { kind: 'section', keyword, args, header: `${indent(depth)}${[keyword, ...args].join(' ')} {`, footer: `${indent(depth)}}`, items };
}

export function deviceSection(v: ScstVolume, depth = 1): ScstSection {
  return section(
    depth,
    'DEVICE',
    [v.name],
    deviceAttributes(v).map(([k, val]) => attr(depth + 1, k, val)),
  );
}

export function targetSection(v: ScstVolume, depth = 1): ScstSection {
  const lun: ScstAttr = { kind: 'attr', name: 'LUN', value: `0 ${v.name}`, text: `${indent(depth + 1)}LUN 0 ${v.name}` };
  return section(depth, 'TARGET', [v.iqn], [attr(depth + 1, 'enabled', '1'), { kind: 'raw', text: '' }, lun]);
}

/** The lines enssib adds for a volume (what a client dry run shows). */
export function volumeBlocks(v: ScstVolume): string[] {
  const out: string[] = [];
  renderItems([section(0, 'HANDLER', [SCST_HANDLER], [deviceSection(v)])], out);
  out.push('');
  renderItems([section(0, 'TARGET_DRIVER', [SCST_DRIVER], [attr(1, 'enabled', '1'), { kind: 'raw', text: '' }, targetSection(v)])], out);
  return out;
}

/** The leading blanks of a line. */
function leading(text: string): string {
  return /^[ \t]*/.exec(text)?.[0] ?? '';
}

/** The indentation of a section's children: that of its first child line, else one tab more than its header. */
function childIndent(s: ScstSection): string {
  const first = s.items.find((i) => i.kind !== 'raw' || i.text.trim() !== '');
  if (first && first.kind !== 'raw') return leading(first.kind === 'attr' ? first.text : first.header);
  return `${leading(s.header)}\t`;
}

/** Adds a section's child before the closing brace, after the last non-blank item (after a blank line when `gap`). */
function appendChild(s: ScstSection, child: ScstItem, gap = true): void {
  let i = s.items.length;
  while (i > 0 && s.items[i - 1]?.kind === 'raw' && (s.items[i - 1] as ScstRaw).text.trim() === '') i--;
  const needsGap = gap && i > 0;
  s.items.splice(i, 0, ...(needsGap ? [{ kind: 'raw', text: '' } as ScstRaw] : []), child);
}

/** A line `NAME value` at an indentation. */
function attrLine(indentation: string, name: string, value: string): ScstAttr {
  return { kind: 'attr', name, value, text: `${indentation}${name} ${quoteValue(value)}` };
}

/**
 * Sets one attribute of a section to a value: a line that already says so is
 * kept as it is (spacing, comment), a line that says otherwise is rewritten at
 * its own indentation, repeated lines of that attribute are dropped, and a
 * missing one is added at the end. Every other line of the section is kept.
 */
function setAttribute(s: ScstSection, name: string, value: string): void {
  const lines = s.items.filter((i): i is ScstAttr => i.kind === 'attr' && i.name === name);
  const [first, ...more] = lines;
  if (!first) {
    appendChild(s, attrLine(childIndent(s), name, value), false);
    return;
  }
  if (first.value !== value) s.items[s.items.indexOf(first)] = attrLine(leading(first.text), name, value);
  for (const m of more) s.items.splice(s.items.indexOf(m), 1);
}

function clone(conf: ScstConf): ScstConf {
  return structuredClone(conf);
}

/** Every DEVICE of that name, under any handler (the file must have at most one). */
function devicesNamed(conf: ScstConf, name: string): { handler: string; device: ScstSection; parent: ScstSection }[] {
  return sections(conf.items, 'HANDLER').flatMap((h) => sections(h.items, 'DEVICE', name).map((d) => ({ handler: h.args[0] ?? '', device: d, parent: h })));
}

/** The one DEVICE of that name under vdisk_blockio, or null; throws when another handler has the name or it is defined twice. */
function ownDevice(conf: ScstConf, name: string): { device: ScstSection; parent: ScstSection } | null {
  const all = devicesNamed(conf, name);
  const foreign = all.find((d) => d.handler !== SCST_HANDLER);
  if (foreign) throw new Error(`${SCST_CONF} already has a device "${name}" under HANDLER ${foreign.handler}; enssib manages ${SCST_HANDLER} devices only`);
  if (all.length > 1) throw new Error(`${SCST_CONF} defines device "${name}" ${all.length} times under HANDLER ${SCST_HANDLER}; keep one and run the command again`);
  return all[0] ?? null;
}

/** The one TARGET of that IQN under the iSCSI driver, or null; throws when it is defined twice. */
function ownTarget(conf: ScstConf, iqn: string): { target: ScstSection; parent: ScstSection } | null {
  const all = sections(conf.items, 'TARGET_DRIVER', SCST_DRIVER).flatMap((d) => sections(d.items, 'TARGET', iqn).map((t) => ({ target: t, parent: d })));
  if (all.length > 1) throw new Error(`${SCST_CONF} defines target "${iqn}" ${all.length} times`);
  return all[0] ?? null;
}

/** Throws when a device of that name in the file is not this volume's block device (another file behind the same name). */
function assertSameFile(device: ScstSection, v: { name: string; filename: string }): void {
  const files = attrs(device).get('filename') ?? [];
  if (files.length > 0 && files.some((f) => f !== v.filename)) {
    throw new Error(`device "${v.name}" in ${SCST_CONF} serves ${files.join(', ')}, not ${v.filename}: it is not this volume's; enssib leaves it alone`);
  }
}

/**
 * The file with the volume's device and target as enssib writes them. Only the
 * volume's own lines change: its DEVICE block under vdisk_blockio (attributes
 * enssib sets are corrected in place, other lines of the block kept), and in
 * its TARGET the `enabled` line and the LUN line of its device. Everything
 * else — other devices and targets, and inside the volume's target its
 * IncomingUser (CHAP), GROUP/INITIATOR access lists, comments, spacing — stays
 * byte for byte. Throws (and changes nothing) when the name is used by another
 * handler or another file, is defined twice, when the target maps LUN 0 to
 * another device or the device to another LUN, or when the target has access
 * groups but no LUN of the device (enssib does not choose who sees a volume).
 */
export function upsertVolume(conf: ScstConf, v: ScstVolume): ScstConf {
  const next = clone(conf);
  const own = ownDevice(next, v.name);
  if (own) {
    assertSameFile(own.device, v);
    for (const [k, val] of deviceAttributes(v)) setAttribute(own.device, k, val);
  } else {
    let handler = sections(next.items, 'HANDLER', SCST_HANDLER)[0];
    if (!handler) {
      handler = section(0, 'HANDLER', [SCST_HANDLER], []);
      const gap: ScstRaw = { kind: 'raw', text: '' };
      const firstDriver = next.items.findIndex((i) => i.kind === 'section' && i.keyword === 'TARGET_DRIVER');
      if (firstDriver < 0) {
        if (next.items.length > 0) next.items.push(gap);
        next.items.push(handler);
      } else next.items.splice(firstDriver, 0, handler, gap);
    }
    appendChild(handler, deviceSection(v, 1));
  }

  const tgt = ownTarget(next, v.iqn);
  if (!tgt) {
    let driver = sections(next.items, 'TARGET_DRIVER', SCST_DRIVER)[0];
    if (!driver) {
      driver = section(0, 'TARGET_DRIVER', [SCST_DRIVER], [attr(1, 'enabled', '1')]);
      if (next.items.length > 0) next.items.push({ kind: 'raw', text: '' });
      next.items.push(driver);
    }
    appendChild(driver, targetSection(v, 1));
  } else {
    const t = tgt.target;
    const all = luns(t);
    const mine = all.filter((l) => l.device === v.name);
    const elsewhere = mine.find((l) => l.lun !== '0');
    if (elsewhere) throw new Error(`target ${v.iqn} in ${SCST_CONF} maps device "${v.name}" to LUN ${elsewhere.lun}${elsewhere.group ? ` in GROUP ${elsewhere.group}` : ''}; enssib volumes are LUN 0`);
    if (mine.length === 0) {
      const other = all.find((l) => l.lun === '0' && l.group === null);
      if (other) throw new Error(`target ${v.iqn} in ${SCST_CONF} maps LUN 0 to device "${other.device}", not "${v.name}"`);
      const groups = sections(t.items, 'GROUP');
      if (groups.length > 0) {
        throw new Error(`target ${v.iqn} in ${SCST_CONF} has access groups (${groups.map((g) => `GROUP ${g.args[0] ?? ''}`).join(', ')}) and no LUN of device "${v.name}"; enssib does not choose which initiators see a volume: add "LUN 0 ${v.name}" where it belongs`);
      }
      appendChild(t, { kind: 'attr', name: 'LUN', value: `0 ${v.name}`, text: `${childIndent(t)}LUN 0 ${v.name}` }, false);
    }
    setAttribute(t, 'enabled', '1');
  }
  next.finalNewline = true;
  assertSafe(next, [v.name]);
  return next;
}

/**
 * The file without the volume's device and target; every other object
 * untouched. Throws (and changes nothing) when the name belongs to another
 * handler or another file, or when the target also exports another device.
 */
export function removeVolume(conf: ScstConf, v: { name: string; filename: string; iqn: string }): ScstConf {
  const next = clone(conf);
  const own = ownDevice(next, v.name);
  if (own) assertSameFile(own.device, v);
  const tgt = ownTarget(next, v.iqn);
  if (tgt) {
    const others = luns(tgt.target).filter((l) => l.device !== v.name);
    if (others.length > 0) {
      throw new Error(`target ${v.iqn} in ${SCST_CONF} also exports ${others.map((l) => `device "${l.device}" (LUN ${l.lun}${l.group ? `, GROUP ${l.group}` : ''})`).join(', ')}; enssib removes only a target that exports the volume alone`);
    }
  }
  const drop = (items: ScstItem[], victim: ScstSection) => {
    const at = items.indexOf(victim);
    // Also drop the blank line left before it, so that add + remove gives back the file.
    const prev = items[at - 1];
    const from = prev?.kind === 'raw' && prev.text.trim() === '' ? at - 1 : at;
    items.splice(from, at - from + 1);
  };
  if (own) drop(own.parent.items, own.device);
  if (tgt) drop(tgt.parent.items, tgt.target);
  return next;
}

/** What the file (or `scstadmin -write_config`) says about one volume. */
export interface ScstVolumeState {
  device: { handler: string; attrs: Map<string, string[]> } | null;
  target: { enabled: boolean; luns: { lun: string; device: string }[] } | null;
}

export function volumeState(conf: ScstConf, name: string, iqn: string): ScstVolumeState {
  const d = devices(conf).find((x) => x.device.args[0] === name);
  const t = sections(conf.items, 'TARGET_DRIVER', SCST_DRIVER).flatMap((dr) => sections(dr.items, 'TARGET', iqn))[0];
  return {
    device: d ? { handler: d.handler, attrs: attrs(d.device) } : null,
    target: t ? { enabled: attrs(t).get('enabled')?.[0] === '1', luns: luns(t) } : null,
  };
}

/** Whether a device in a state carries exactly the attributes enssib writes for the volume. */
export function deviceMatches(d: ScstVolumeState['device'], v: ScstVolume): boolean {
  return !!d && d.handler === SCST_HANDLER && deviceAttributes(v).every(([k, val]) => d.attrs.get(k)?.[0] === val);
}

/** Whether a state is exactly the volume as enssib writes it (handler, attributes, enabled target with LUN 0). */
export function stateMatches(s: ScstVolumeState, v: ScstVolume): boolean {
  if (!s.device || !s.target || s.device.handler !== SCST_HANDLER) return false;
  const a = s.device.attrs;
  return deviceAttributes(v).every(([k, val]) => a.get(k)?.[0] === val) && s.target.enabled && s.target.luns.some((l) => l.lun === '0' && l.device === v.name);
}

/** Devices under vdisk handlers that lack nv_cache 0 or write_through 1 (the site's corruption hazard). */
export function unsafeDevices(conf: ScstConf): { name: string; handler: string; problems: string[] }[] {
  return devices(conf)
    .filter((d) => d.handler.startsWith('vdisk_'))
    .map(({ handler, device }) => {
      const a = attrs(device);
      const problems: string[] = [];
      if (a.get('nv_cache')?.[0] !== '0') problems.push(`nv_cache ${a.get('nv_cache')?.[0] ?? '(unset)'}`);
      if (handler !== 'vdisk_nullio' && a.get('write_through')?.[0] !== '1') problems.push(`write_through ${a.get('write_through')?.[0] ?? '(unset)'}`);
      return { name: device.args[0] ?? '', handler, problems };
    })
    .filter((d) => d.problems.length > 0);
}

/** Throws if any of the named devices would be written without nv_cache 0 / write_through 1. */
export function assertSafe(conf: ScstConf, names: readonly string[]): void {
  const bad = unsafeDevices(conf).filter((d) => names.includes(d.name));
  if (bad.length > 0) throw new Error(`refusing to write ${SCST_CONF}: ${bad.map((b) => `${b.name} (${b.problems.join(', ')})`).join('; ')}`);
}

// ---------------------------------------------------------------- commands

/** The file, or nothing when it does not exist yet. */
export function readConfArgv(): string[] {
  return ['sh', '-c', 'if [ -e "$1" ]; then cat -- "$1"; fi', 'read-conf', SCST_CONF];
}

/** The configuration in force, as scstadmin writes it (key attributes). */
export function runningConfArgv(): string[] {
  return ['sh', '-c', 't=$(mktemp) || exit 1; scstadmin -noprompt -write_config "$t" >/dev/null; rc=$?; cat -- "$t"; rm -f -- "$t"; exit $rc', 'scst-running'];
}

/** The initiator names with a session on the target (one a line; nothing when the target does not run). */
export function scstSessionsArgv(iqn: string): string[] {
  return [
    'sh',
    '-c',
    'd=/sys/kernel/scst_tgt/targets/iscsi/$1/sessions; [ -d "$d" ] || exit 0; for s in "$d"/*; do [ -d "$s" ] || continue; if [ -r "$s/initiator_name" ]; then head -n1 "$s/initiator_name"; else echo "${s##*/}"; fi; done',
    'target-sessions',
    iqn,
  ];
}

export function applyArgv(): string[] {
  return ['scstadmin', '-noprompt', '-config', SCST_CONF];
}

export function resyncArgv(name: string): string[] {
  return ['scstadmin', '-noprompt', '-resync_dev', name];
}

export function removeTargetArgv(iqn: string): string[][] {
  return [
    ['scstadmin', '-noprompt', '-disable_target', iqn, '-driver', SCST_DRIVER],
    ['scstadmin', '-noprompt', '-rem_target', iqn, '-driver', SCST_DRIVER],
  ];
}

export function closeDeviceArgv(name: string): string[] {
  return ['scstadmin', '-noprompt', '-close_dev', name, '-handler', SCST_HANDLER];
}

// ---------------------------------------------------------------- initiator access lists

/** Whether an INITIATOR line's name or pattern (`*`, `?`; a leading `!` excludes) admits the initiator; IQNs compare without case. */
export function initiatorMatches(pattern: string, initiator: string): boolean {
  if (pattern.startsWith('!')) return false;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(initiator);
}

/** What adding an initiator to the access groups of a target means there. */
export interface ScstAclTarget {
  iqn: string;
  /** The GROUP the initiator is (or would be) in; null when the target has no access group holding its LUN: nothing to add. */
  group: string | null;
  /** The initiator was added to the group by this edit (false: already listed, or no group). */
  added: boolean;
}

/**
 * The file with the initiator added to the access group of each iSCSI target
 * whose IQN starts with `prefix:` and whose LUNs sit in a GROUP: the group that
 * holds the LUN of the target's volume (`prefix:<volume>` exports device
 * `<volume>`). One `INITIATOR <name>` line is added after the group's last
 * INITIATOR line (else at its end); every other line stays byte for byte. A
 * target without groups (its LUNs in the default group, which every initiator
 * sees), or whose group already admits the initiator (by name or pattern), is
 * left as it is. Throws, changing nothing, when several groups hold the
 * volume's LUN: which one the worker belongs to is the site's choice.
 */
export function addInitiator(conf: ScstConf, prefix: string, initiator: string): { conf: ScstConf; targets: ScstAclTarget[] } {
  const next = clone(conf);
  const targets: ScstAclTarget[] = [];
  for (const t of sections(next.items, 'TARGET_DRIVER', SCST_DRIVER).flatMap((d) => sections(d.items, 'TARGET'))) {
    const iqn = t.args[0] ?? '';
    if (!iqn.startsWith(`${prefix}:`)) continue;
    const groups = sections(t.items, 'GROUP');
    if (groups.length === 0) continue;
    const member = groups.find((g) => (attrs(g).get('INITIATOR') ?? []).some((p) => initiatorMatches(p, initiator)));
    if (member) {
      targets.push({ iqn, group: member.args[0] ?? '', added: false });
      continue;
    }
    const device = iqn.slice(prefix.length + 1);
    const holding = groups.filter((g) => luns(t).some((l) => l.group === (g.args[0] ?? '') && l.device === device));
    if (holding.length > 1) {
      throw new Error(`target ${iqn} in ${SCST_CONF} has device "${device}" in ${holding.length} access groups (${holding.map((g) => g.args[0] ?? '').join(', ')}): add ${initiator} to the one it belongs to by hand`);
    }
    const g = holding[0];
    if (!g) {
      targets.push({ iqn, group: null, added: false });
      continue;
    }
    const line = attrLine(childIndent(g), 'INITIATOR', initiator);
    const last = g.items.map((i) => i.kind === 'attr' && i.name === 'INITIATOR').lastIndexOf(true);
    if (last >= 0) g.items.splice(last + 1, 0, { ...line, text: `${leading((g.items[last] as ScstAttr).text)}INITIATOR ${quoteValue(initiator)}` });
    else appendChild(g, line, false);
    targets.push({ iqn, group: g.args[0] ?? '', added: true });
  }
  return { conf: next, targets };
}
