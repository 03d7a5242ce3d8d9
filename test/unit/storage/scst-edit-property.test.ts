import { describe, expect, it } from 'vitest';
import { asIdentity, newIdentity, scstIdentity } from '../../../src/storage/identity.js';
import { devices, luns, parseScstConf, removeVolume, renderScstConf, sections, stateMatches, upsertVolume, volumeState, type ScstVolume } from '../../../src/storage/targets/scst.js';
import { parseStorageFacts, type VolumeSite } from '../../../src/storage/volume.js';
import { testVolumeSite } from '../../support/volume-site.js';

/**
 * The scst.conf editor changes only the volume's own lines. Property, over
 * generated adversarial files (CHAP IncomingUser, GROUP/INITIATOR access
 * lists, comments, odd spacing, two vdisk_blockio handlers, the volume's
 * device and target already present in many shapes) and both edits (add,
 * remove): every line outside the volume's own lines is the same, byte for
 * byte and in the same order. The volume's own lines are decided here, from
 * the text, independently of the editor:
 *   add:    its DEVICE block's header, footer and the attributes enssib sets
 *           (filename nv_cache write_through t10_dev_id usn); in its TARGET
 *           the header, footer, `enabled` line and target-level LUN lines of
 *           its device;
 *   remove: its whole DEVICE block and its whole TARGET block.
 */

const NAME = 'mail';
const IQN = `iqn.2016-04.fr.enssib:${NAME}`;
const FILE = `/dev/vg_cluster/${NAME}`;
const ID = asIdentity('0123456789abcdef0123456789abcdef');
const VOL: ScstVolume = { name: NAME, filename: FILE, identity: ID, iqn: IQN };
const ENSSIB_ATTRS = ['filename', 'nv_cache', 'write_through', 't10_dev_id', 'usn'];

/** A small seeded PRNG (mulberry32): the same cases on every run, many of them. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const chance = (p: number) => next() < p;
  return { int, pick, chance };
}
type Rng = ReturnType<typeof prng>;

/** Odd but valid spacing: tabs, spaces, mixed, trailing blanks, trailing comments. */
function line(r: Rng, depth: number, body: string): string {
  const ind = r.pick(['\t', '    ', '  ', '\t ', ' \t']).repeat(depth);
  const tail = r.pick(['', '', '', '   ', '\t', '  # kept as is', ' #comment \\# with an escaped hash']);
  return `${ind}${body}${tail}`;
}
function attrLine(r: Rng, depth: number, name: string, value: string): string {
  return line(r, depth, `${name}${r.pick([' ', '  ', '\t', ' \t '])}${value}`);
}
function junk(r: Rng, depth: number): string[] {
  const out: string[] = [];
  const n = r.int(3);
  for (let i = 0; i < n; i++) out.push(r.pick(['', '   ', `${'\t'.repeat(depth)}# a comment: } { are fine here`, '#', `${'  '.repeat(depth)}## --- block ---`]));
  return out;
}
function block(r: Rng, depth: number, head: string, body: string[]): string[] {
  return [line(r, depth, `${head}${r.pick([' {', '  {', '\t{'])}`), ...body, line(r, depth, '}')];
}

function device(r: Rng, name: string, mine: boolean): string[] {
  const body: string[] = [...junk(r, 2)];
  const id = mine ? (r.chance(0.5) ? ID : newIdentity()) : newIdentity();
  const attrs: [string, string][] = [
    ['filename', mine ? FILE : `/dev/vg_cluster/${name}`],
    ['nv_cache', r.pick(['0', '1'])],
    ['write_through', r.pick(['1', '0'])],
    ['t10_dev_id', scstIdentity(id).t10DevId],
    ['usn', scstIdentity(id).usn],
    ['blocksize', '4096'],
    ['threads_num', '4'],
  ];
  for (const [k, v] of attrs) {
    if (r.chance(0.8)) body.push(attrLine(r, 2, k, v));
    if (r.chance(0.1)) body.push(attrLine(r, 2, k, v)); // repeated attribute
    if (r.chance(0.2)) body.push(...junk(r, 2));
  }
  return block(r, 1, `DEVICE ${name}`, body);
}

function target(r: Rng, iqn: string, dev: string | null, mine: boolean): string[] {
  const body: string[] = [];
  if (r.chance(0.5)) body.push(attrLine(r, 2, 'IncomingUser', `"user${r.int(9)} secret${r.int(99999)}long"`));
  if (r.chance(0.3)) body.push(attrLine(r, 2, 'OutgoingUser', '"out 12charsecretX"'));
  if (r.chance(0.8)) body.push(attrLine(r, 2, 'enabled', r.pick(['1', '0'])));
  if (r.chance(0.4)) body.push(attrLine(r, 2, 'rel_tgt_id', String(1 + r.int(9))));
  body.push(...junk(r, 2));
  const groups = r.chance(mine ? 0.5 : 0.3);
  if (groups) {
    const g = [attrLine(r, 3, 'INITIATOR', `iqn.1993-08.org.debian:01:${r.int(99999)}`), ...junk(r, 3)];
    if (dev && r.chance(0.8)) g.push(attrLine(r, 3, 'LUN', `0 ${dev}`));
    if (r.chance(0.3)) g.push(attrLine(r, 3, 'INITIATOR', '"iqn.2005-03.org.open-iscsi:*"'));
    body.push(...block(r, 2, `GROUP ${r.pick(['allowed', 'nodes', 'acl-1'])}`, g));
  } else if (dev && r.chance(0.85)) {
    body.push(r.chance(0.8) ? attrLine(r, 2, 'LUN', `0 ${dev}`) : block(r, 2, `LUN 0 ${dev}`, [attrLine(r, 3, 'read_only', '0')]).join('\n'));
  }
  if (r.chance(0.15)) body.push(attrLine(r, 2, 'LUN', '1 legacy'));
  return block(r, 1, `TARGET ${iqn}`, body);
}

/** One adversarial scst.conf. */
function genFile(r: Rng): string {
  const out: string[] = [...junk(r, 0)];
  const handlers = 1 + r.int(2);
  const deviceIn = r.chance(0.6) ? r.int(handlers) : -1;
  for (let h = 0; h < handlers; h++) {
    const body: string[] = [];
    for (const other of ['ldap', 'legacy', `d${h}`]) if (r.chance(0.6)) body.push(...device(r, other, false), ...junk(r, 1));
    if (deviceIn === h) body.splice(r.int(body.length + 1), 0, ...device(r, NAME, true));
    out.push(...block(r, 0, 'HANDLER vdisk_blockio', body), ...junk(r, 0));
  }
  if (r.chance(0.4)) out.push(...block(r, 0, 'HANDLER vdisk_fileio', device(r, 'scratch', false)), '');
  if (r.chance(0.9)) {
    const body: string[] = [];
    if (r.chance(0.6)) body.push(attrLine(r, 1, 'IncomingUser', '"joe 12charsecret"'));
    body.push(attrLine(r, 1, 'enabled', '1'), ...junk(r, 1));
    if (r.chance(0.7)) body.push(...target(r, 'iqn.2016-04.fr.enssib:ldap', 'ldap', false), ...junk(r, 1));
    if (r.chance(0.6)) body.splice(r.int(body.length + 1), 0, ...target(r, IQN, r.chance(0.9) ? NAME : 'other', true));
    out.push(...block(r, 0, 'TARGET_DRIVER iscsi', body));
  }
  if (r.chance(0.3)) out.push('', ...block(r, 0, 'DEVICE_GROUP dgroup1', [line(r, 1, `DEVICE ${NAME}`), line(r, 1, 'DEVICE ldap')]));
  return out.join('\n') + (r.chance(0.9) ? '\n' : '');
}

const strip = (l: string) => l.replace(/(^|[^\\])#.*$/, '$1').trim();

/** The lines of `text` that are not the volume's own for this edit, blank lines left out. */
function outside(text: string, edit: 'add' | 'remove'): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  let dropDepth = -1;
  for (const l of text.split('\n')) {
    const body = strip(l);
    const opens = body.endsWith('{');
    const closes = body === '}';
    const head = opens ? body.slice(0, -1).trim().split(/\s+/) : [];
    const parent = stack[stack.length - 1] ?? '';
    let own = false;
    if (dropDepth >= 0) {
      if (opens) stack.push(head.join(' '));
      if (closes) {
        stack.pop();
        if (stack.length === dropDepth) dropDepth = -1;
      }
      continue;
    }
    const isOwnDevice = head[0] === 'DEVICE' && head[1] === NAME && parent === 'HANDLER vdisk_blockio';
    const isOwnTarget = head[0] === 'TARGET' && head[1] === IQN && parent === 'TARGET_DRIVER iscsi';
    if (opens) {
      stack.push(head.join(' '));
      if (edit === 'remove' && (isOwnDevice || isOwnTarget)) {
        dropDepth = stack.length - 1;
        continue;
      }
      own = isOwnDevice || isOwnTarget;
    } else if (closes) {
      const closing = stack.pop() ?? '';
      own = closing === `DEVICE ${NAME}` && stack[stack.length - 1] === 'HANDLER vdisk_blockio';
      own ||= closing === `TARGET ${IQN}` && stack[stack.length - 1] === 'TARGET_DRIVER iscsi';
    } else if (body !== '') {
      const [k, a, b] = body.split(/\s+/);
      if (parent === `DEVICE ${NAME}` && stack[stack.length - 2] === 'HANDLER vdisk_blockio') own = ENSSIB_ATTRS.includes(k ?? '');
      if (parent === `TARGET ${IQN}` && stack[stack.length - 2] === 'TARGET_DRIVER iscsi') own = k === 'enabled' || (k === 'LUN' && b === NAME && a !== undefined);
    }
    if (!own && l.trim() !== '') out.push(l);
  }
  return out;
}

/** Leaves out the enclosing sections an add creates when the file had none (written exactly so by enssib). */
function withoutCreated(lines: string[], before: string): string[] {
  const out = [...lines];
  const cut = (seq: string[]) => {
    const at = out.findIndex((_, i) => seq.every((l, j) => out[i + j] === l));
    if (at >= 0) out.splice(at, seq.length);
  };
  if (!/^\s*HANDLER\s+vdisk_blockio\s*\{/m.test(before)) cut(['HANDLER vdisk_blockio {', '}']);
  if (!/^\s*TARGET_DRIVER\s+iscsi\s*\{/m.test(before)) cut(['TARGET_DRIVER iscsi {', '\tenabled 1', '}']);
  return out;
}

/** The refusals the editor may give: each one names what it found. */
const REFUSALS = [
  /already has a device "mail" under HANDLER vdisk_fileio/,
  /defines device "mail" \d times/,
  /serves \S+, not \/dev\/vg_cluster\/mail: it is not this volume's/,
  /maps LUN 0 to device "ldap|other", not "mail"/,
  /maps device "mail" to LUN \d+/,
  /has access groups \(GROUP [^)]+\) and no LUN of device "mail"/,
  /also exports device "(legacy|other)"/,
  /defines target "[^"]+" \d times/,
];

describe('scst.conf edits keep every line outside the volume\'s own, byte for byte (property, generated files)', () => {
  const CASES = 1500;
  it(`holds for ${CASES} generated files, for add and for remove`, () => {
    const counts = { add: 0, remove: 0, refused: 0, withChap: 0, withGroups: 0, twoHandlers: 0 };
    for (let seed = 1; seed <= CASES; seed++) {
      const r = prng(seed);
      const text = genFile(r);
      const conf = parseScstConf(text);
      expect(renderScstConf(conf), `seed ${seed}`).toBe(text);
      if (/IncomingUser/.test(text)) counts.withChap++;
      if (/GROUP /.test(text)) counts.withGroups++;
      if (text.split('HANDLER vdisk_blockio').length > 2) counts.twoHandlers++;
      for (const edit of ['add', 'remove'] as const) {
        let after: string;
        try {
          after = renderScstConf(edit === 'add' ? upsertVolume(conf, VOL) : removeVolume(conf, VOL));
        } catch (e) {
          const m = (e as Error).message;
          expect(REFUSALS.some((re) => re.test(m)), `seed ${seed} ${edit}: unexpected refusal: ${m}\n${text}`).toBe(true);
          counts.refused++;
          continue;
        }
        counts[edit]++;
        expect(withoutCreated(outside(after, edit), text), `seed ${seed} ${edit}:\n--- before\n${text}\n--- after\n${after}`).toEqual(outside(text, edit));
        const re = parseScstConf(after);
        expect(renderScstConf(re)).toBe(after);
        const mine = devices(re).filter((d) => d.device.args[0] === NAME);
        if (edit === 'add') {
          expect(mine, `seed ${seed}: one DEVICE ${NAME}`).toHaveLength(1);
          expect(stateMatches(volumeState(re, NAME, IQN), VOL), `seed ${seed}`).toBe(true);
          // a target with access groups never gains a LUN in its default group (open to every initiator)
          const before = sections(conf.items, 'TARGET_DRIVER', 'iscsi').flatMap((d) => sections(d.items, 'TARGET', IQN))[0];
          const now = sections(re.items, 'TARGET_DRIVER', 'iscsi').flatMap((d) => sections(d.items, 'TARGET', IQN))[0];
          if (before && sections(before.items, 'GROUP').length > 0) {
            expect(luns(now as NonNullable<typeof now>).filter((l) => l.group === null)).toEqual(luns(before).filter((l) => l.group === null));
          }
        } else {
          expect(mine).toHaveLength(0);
          expect(volumeState(re, NAME, IQN).target).toBeNull();
        }
      }
    }
    // the generator reaches every shape, and most edits go through
    expect(counts.add).toBeGreaterThan(CASES / 4);
    expect(counts.remove).toBeGreaterThan(CASES / 4);
    expect(counts.refused).toBeGreaterThan(CASES / 20);
    expect(counts.withChap).toBeGreaterThan(CASES / 3);
    expect(counts.withGroups).toBeGreaterThan(CASES / 5);
    expect(counts.twoHandlers).toBeGreaterThan(CASES / 5);
  });
});

describe('scst.conf edits: the cases that lost access control or duplicated a device', () => {
  const CHAP_ACL = [
    'HANDLER vdisk_blockio {',
    '\tDEVICE mail {',
    '\t\tfilename /dev/vg_cluster/mail',
    '\t\tnv_cache 0',
    '\t\twrite_through 1',
    `\t\tt10_dev_id ${scstIdentity(ID).t10DevId}`,
    `\t\tusn ${scstIdentity(ID).usn}`,
    '\t}',
    '}',
    '',
    'TARGET_DRIVER iscsi {',
    '\tenabled 1',
    '',
    '\tTARGET iqn.2016-04.fr.enssib:mail {',
    '\t\tIncomingUser "mailuser 12charsecretZ"   # CHAP, set by hand',
    '\t\tenabled 1',
    '',
    '\t\tGROUP mailhosts {',
    '\t\t\tLUN 0 mail',
    '\t\t\tINITIATOR iqn.1993-08.org.debian:01:node01',
    '\t\t}',
    '\t}',
    '}',
    '',
  ].join('\n');

  it('keeps a target with CHAP and a GROUP/INITIATOR access list as it is (no LUN 0 in the default group)', () => {
    expect(renderScstConf(upsertVolume(parseScstConf(CHAP_ACL), VOL))).toBe(CHAP_ACL);
    // with another identity on the device: only the identity lines change
    const other = newIdentity();
    const after = renderScstConf(upsertVolume(parseScstConf(CHAP_ACL), { ...VOL, identity: other }));
    expect(after).toBe(CHAP_ACL.replace(scstIdentity(ID).t10DevId, scstIdentity(other).t10DevId).replace(`usn ${scstIdentity(ID).usn}`, `usn ${scstIdentity(other).usn}`));
  });

  it('refuses to put the volume in a target with access groups that do not list it', () => {
    const noLun = CHAP_ACL.replace('\t\t\tLUN 0 mail\n', '');
    expect(() => upsertVolume(parseScstConf(noLun), VOL)).toThrow(/has access groups \(GROUP mailhosts\) and no LUN of device "mail"/);
  });

  it('adds only the LUN line to a target without it, keeping CHAP and comments', () => {
    const t = 'TARGET_DRIVER iscsi {\n    TARGET iqn.2016-04.fr.enssib:mail {\n        IncomingUser "u 12charsecretQ" # chap\n        enabled 0\n    }\n}\n';
    expect(renderScstConf(upsertVolume(parseScstConf(t), VOL))).toContain(
      '    TARGET iqn.2016-04.fr.enssib:mail {\n        IncomingUser "u 12charsecretQ" # chap\n        enabled 1\n        LUN 0 mail\n    }',
    );
  });

  it('finds the device in a second HANDLER vdisk_blockio block instead of adding a duplicate', () => {
    const two = ['HANDLER vdisk_blockio {', '\tDEVICE ldap {', '\t\tfilename /dev/vg_cluster/ldap', '\t}', '}', '', 'HANDLER vdisk_blockio {', '\tDEVICE mail {', '\t\tfilename /dev/vg_cluster/mail', '\t\tnv_cache 1', '\t}', '}', ''].join('\n');
    const after = upsertVolume(parseScstConf(two), VOL);
    expect(devices(after).filter((d) => d.device.args[0] === NAME)).toHaveLength(1);
    expect(renderScstConf(after)).toContain('HANDLER vdisk_blockio {\n\tDEVICE ldap {\n\t\tfilename /dev/vg_cluster/ldap\n\t}\n}\n\nHANDLER vdisk_blockio {\n\tDEVICE mail {\n\t\tfilename /dev/vg_cluster/mail\n\t\tnv_cache 0\n');
    const dup = two.replace('DEVICE ldap', 'DEVICE mail').replace('/dev/vg_cluster/ldap', '/dev/vg_cluster/mail');
    expect(() => upsertVolume(parseScstConf(dup), VOL)).toThrow(/defines device "mail" 2 times/);
  });

  it('never adopts or removes a device of that name serving another file, or one under another handler', () => {
    const foreign = 'HANDLER vdisk_blockio {\n\tDEVICE mail {\n\t\tfilename /dev/sdb\n\t}\n}\n';
    expect(() => upsertVolume(parseScstConf(foreign), VOL)).toThrow(/serves \/dev\/sdb, not \/dev\/vg_cluster\/mail/);
    expect(() => removeVolume(parseScstConf(foreign), VOL)).toThrow(/serves \/dev\/sdb/);
    const fileio = 'HANDLER vdisk_fileio {\n\tDEVICE mail {\n\t\tfilename /srv/mail.img\n\t}\n}\n';
    expect(() => removeVolume(parseScstConf(fileio), VOL)).toThrow(/under HANDLER vdisk_fileio/);
  });

  it('refuses to remove a target that also exports another device', () => {
    const shared = CHAP_ACL.replace('\t\t\tLUN 0 mail\n', '\t\t\tLUN 0 mail\n\t\t\tLUN 1 archive\n');
    expect(() => removeVolume(parseScstConf(shared), VOL)).toThrow(/also exports device "archive" \(LUN 1, GROUP mailhosts\)/);
  });
});

describe('a running SCST configuration that cannot be read stops the run', () => {
  const site: VolumeSite = testVolumeSite({ servers: testVolumeSite().servers.slice(0, 1), workers: [] });
  const res = (exitCode: number, stdout = '', stderr = '') => ({ exitCode, stdout, stderr, durationMs: 1 });
  const vgs = JSON.stringify({ report: [{ vg: [{ vg_name: 'vg_cluster', vg_size: '2147483648', vg_free: '2147483648', vg_extent_size: '4194304', vg_extent_count: '512', vg_free_count: '512' }] }] });
  const lvs = JSON.stringify({ report: [{ lv: [] }] });
  const facts = (running: ReturnType<typeof res>) => [res(0, vgs), res(0, lvs), res(0, ''), running, res(0, '600 root:root\n'), res(2)];

  it('is an error when scstadmin -write_config fails, never an empty configuration', () => {
    expect(() => parseStorageFacts(site, 'data1', NAME, facts(res(1, '', 'scstadmin: SCST module not loaded\n')), { drbd: false })).toThrow(
      /data1: cannot read the SCST configuration in force \(scstadmin -write_config\): scstadmin: SCST module not loaded/,
    );
    expect(() => parseStorageFacts(site, 'data1', NAME, facts(res(0, 'HANDLER vdisk_blockio {\n')), { drbd: false })).toThrow(/cannot read the SCST configuration in force/);
    expect(parseStorageFacts(site, 'data1', NAME, facts(res(0, '')), { drbd: false }).scst?.running.items).toEqual([]);
  });
});
