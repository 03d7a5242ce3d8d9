import { z } from 'zod';
import type { RunResult } from '../remote/types.js';
import { FS_TAG_PREFIX, VOLUME_TAG, identityTag, type Identity } from './identity.js';
import { oneLine } from './shell.js';

/**
 * LVM as data: the JSON reports of `lvs`/`vgs` parsed into plain objects, sizes
 * rounded to whole extents, and the argv of every LVM command enssib runs.
 */

export const LV_FIELDS = ['lv_name', 'vg_name', 'lv_size', 'lv_tags', 'lv_attr', 'lv_active', 'lv_path', 'lv_device_open'] as const;
export const VG_FIELDS = ['vg_name', 'vg_size', 'vg_free', 'vg_extent_size', 'vg_extent_count', 'vg_free_count'] as const;

export type Filesystem = 'ext4' | 'xfs' | 'none';
export const FILESYSTEMS: readonly Filesystem[] = ['ext4', 'xfs', 'none'];

export interface LvInfo {
  name: string;
  vg: string;
  sizeBytes: number;
  tags: string[];
  attr: string;
  active: boolean;
  /** Opened by something on this host (mounted, exported, held by device-mapper). */
  open: boolean;
  path: string;
}

export interface VgInfo {
  name: string;
  sizeBytes: number;
  freeBytes: number;
  extentBytes: number;
  extentCount: number;
  freeExtents: number;
}

export class LvmReportError extends Error {}

/** `lvs` of every LV in the VG, JSON report, sizes in bytes without suffix (`extra` fields after the usual ones). */
export function lvsArgv(vg: string, extra: readonly string[] = []): string[] {
  return ['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', [...LV_FIELDS, ...extra].join(','), vg];
}

/** The fields `parseSnapshots` reads, asked for in addition to LV_FIELDS. */
export const SNAPSHOT_FIELDS = ['origin', 'data_percent'] as const;

export function vgsArgv(vg: string): string[] {
  return ['vgs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', VG_FIELDS.join(','), vg];
}

const str = z.string();
const lvRow = z.looseObject({
  lv_name: str,
  vg_name: str,
  lv_size: str,
  lv_tags: str.default(''),
  lv_attr: str.default(''),
  lv_active: str.default(''),
  lv_path: str.default(''),
  lv_device_open: str.default(''),
});
const vgRow = z.looseObject({ vg_name: str, vg_size: str, vg_free: str, vg_extent_size: str, vg_extent_count: str, vg_free_count: str });
const report = <T extends z.ZodType>(key: string, row: T) => z.object({ report: z.array(z.looseObject({ [key]: z.array(row).default([]) })) });

function bytes(v: string, what: string): number {
  const t = v.trim();
  if (!/^\d+$/.test(t)) throw new LvmReportError(`${what}: expected a size in bytes, got ${JSON.stringify(v)}`);
  const n = Number(t);
  if (!Number.isSafeInteger(n)) throw new LvmReportError(`${what}: ${t} is too large`);
  return n;
}

function parseJson(text: string, what: string): unknown {
  // lvs/vgs may print warnings before the JSON on stdout with some configurations; the report starts at the first "{".
  const start = text.indexOf('{');
  if (start < 0) throw new LvmReportError(`${what}: no JSON report in the output`);
  try {
    return JSON.parse(text.slice(start));
  } catch (e) {
    throw new LvmReportError(`${what}: the JSON report cannot be read (${(e as Error).message})`);
  }
}

export function parseLvs(text: string): LvInfo[] {
  const parsed = report('lv', lvRow).safeParse(parseJson(text, 'lvs'));
  if (!parsed.success) throw new LvmReportError(`lvs: unexpected report shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data.report.flatMap((r) =>
    (r.lv as z.infer<typeof lvRow>[]).map((l) => ({
      name: l.lv_name,
      vg: l.vg_name,
      sizeBytes: bytes(l.lv_size, `lvs ${l.lv_name} lv_size`),
      tags: l.lv_tags === '' ? [] : l.lv_tags.split(',').map((t) => t.trim()).filter(Boolean),
      attr: l.lv_attr,
      active: l.lv_active === 'active' || l.lv_attr.charAt(4) === 'a',
      open: l.lv_device_open === 'open' || l.lv_attr.charAt(5) === 'o',
      path: l.lv_path || `/dev/${l.vg_name}/${l.lv_name}`,
    })),
  );
}

export interface SnapshotInfo {
  name: string;
  /** The LV it is a snapshot of. */
  origin: string;
  /** Copy-on-write area used, in percent; null when LVM does not say (inactive). */
  usedPercent: number | null;
  /** LVM marked it invalid: its copy-on-write area filled up, its content is lost. */
  invalid: boolean;
  active: boolean;
}

const snapRow = z.looseObject({ lv_name: str, lv_attr: str.default(''), origin: str.default(''), data_percent: str.default('') });

/** The snapshots in an `lvs` report that has SNAPSHOT_FIELDS (lv_attr: "s" snapshot, "S" invalid snapshot). */
export function parseSnapshots(text: string): SnapshotInfo[] {
  const parsed = report('lv', snapRow).safeParse(parseJson(text, 'lvs'));
  if (!parsed.success) throw new LvmReportError(`lvs: unexpected report shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data.report.flatMap((r) =>
    (r.lv as z.infer<typeof snapRow>[])
      .filter((l) => l.lv_attr.charAt(0) === 's' || l.lv_attr.charAt(0) === 'S')
      .map((l) => {
        const pct = Number.parseFloat(l.data_percent);
        return {
          name: l.lv_name,
          origin: l.origin,
          usedPercent: Number.isFinite(pct) ? pct : null,
          invalid: l.lv_attr.charAt(0) === 'S' || l.lv_attr.charAt(4) === 'I',
          active: l.lv_attr.charAt(4) === 'a',
        };
      }),
  );
}

export function parseVgs(text: string): VgInfo[] {
  const parsed = report('vg', vgRow).safeParse(parseJson(text, 'vgs'));
  if (!parsed.success) throw new LvmReportError(`vgs: unexpected report shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data.report.flatMap((r) =>
    (r.vg as z.infer<typeof vgRow>[]).map((v) => ({
      name: v.vg_name,
      sizeBytes: bytes(v.vg_size, 'vg_size'),
      freeBytes: bytes(v.vg_free, 'vg_free'),
      extentBytes: bytes(v.vg_extent_size, 'vg_extent_size'),
      extentCount: bytes(v.vg_extent_count, 'vg_extent_count'),
      freeExtents: bytes(v.vg_free_count, 'vg_free_count'),
    })),
  );
}

/** Why a `vgs`/`lvs` run failed, in words (the VG missing is the usual case). */
export function lvmFailure(r: RunResult, vg: string): string {
  if (/Volume group "[^"]*" not found|not found/i.test(r.stderr)) return `volume group ${vg} not found`;
  const last = r.stderr.trim().split('\n').filter(Boolean).pop();
  return `LVM report failed with exit code ${r.exitCode}${last ? `: ${last.trim()}` : ''}`;
}

/** Size after LVM rounds it up to whole extents (what `lvcreate -L` allocates). */
export function roundToExtents(sizeBytes: number, extentBytes: number): number {
  if (!(extentBytes > 0)) throw new Error('extent size must be positive');
  return Math.ceil(sizeBytes / extentBytes) * extentBytes;
}

/** "200g", "1536g", "512m": the largest binary unit that expresses the size exactly (LVM: lowercase = powers of 1024). */
export function lvmSize(sizeBytes: number): string {
  const units: [string, number][] = [
    ['t', 1024 ** 4],
    ['g', 1024 ** 3],
    ['m', 1024 ** 2],
    ['k', 1024],
  ];
  for (const [u, n] of units) if (sizeBytes % n === 0) return `${sizeBytes / n}${u}`;
  return `${sizeBytes}b`;
}

export function lvRef(vg: string, name: string): string {
  return `${vg}/${name}`;
}

export function lvPath(vg: string, name: string): string {
  return `/dev/${vg}/${name}`;
}

export function volumeTags(id: Identity, fs: Filesystem): string[] {
  return [VOLUME_TAG, identityTag(id), `${FS_TAG_PREFIX}${fs}`];
}

export function lvcreateArgv(vg: string, name: string, sizeBytes: number, tags: readonly string[]): string[] {
  return ['lvcreate', '--yes', '--wipesignatures', 'y', '--zero', 'y', '--activate', 'y', '--name', name, '--size', lvmSize(sizeBytes), ...tags.flatMap((t) => ['--addtag', t]), vg];
}

export function lvextendArgv(vg: string, name: string, sizeBytes: number): string[] {
  return ['lvextend', '--size', lvmSize(sizeBytes), lvRef(vg, name)];
}

export function lvremoveArgv(vg: string, name: string): string[] {
  return ['lvremove', '--yes', lvRef(vg, name)];
}

export function lvActivateArgv(vg: string, name: string): string[] {
  return ['lvchange', '--activate', 'y', lvRef(vg, name)];
}

export function lvDeactivateArgv(vg: string, name: string): string[] {
  return ['lvchange', '--activate', 'n', lvRef(vg, name)];
}

/** Reloads the device-mapper table from the metadata another host changed (size after lvextend). */
export function lvRefreshArgv(vg: string, name: string): string[] {
  return ['lvchange', '--refresh', lvRef(vg, name)];
}

/**
 * Creates a filesystem only on a device that carries no signature at all,
 * read exactly: `wipefs -n` lists none and `blkid -p` exits 2 ("nothing
 * found"). Any other answer (a signature, blkid exit 8 "ambivalent", an error)
 * refuses, and mkfs never gets -F. enssib runs it only right after creating
 * the LV in the same run.
 */
const MKFS_GUARD = oneLine([
  'd=$1; shift',
  'sig=$(wipefs -n -- "$d") || { echo "enssib: wipefs -n $d failed: not creating a filesystem" >&2; exit 1; }',
  'if [ -n "$sig" ]; then printf "enssib: %s already has a signature, not creating a filesystem:\\n%s\\n" "$d" "$sig" >&2; exit 1; fi',
  'blkid -p -- "$d" >/dev/null 2>&1; rc=$?',
  'if [ "$rc" -ne 2 ]; then echo "enssib: blkid -p $d exited $rc (2 means no signature): not creating a filesystem" >&2; exit 1; fi',
  'exec "$@"',
]);

export function mkfsArgv(fs: Filesystem, device: string): string[] | null {
  const mkfs = fs === 'ext4' ? ['mkfs.ext4', '-q', device] : fs === 'xfs' ? ['mkfs.xfs', '-q', device] : null;
  return mkfs && ['sh', '-c', MKFS_GUARD, 'enssib-mkfs', device, ...mkfs];
}

// ---------------------------------------------------------------- physical volumes

/**
 * The volume group's physical volumes and the DRBD resource's device(s), both
 * resolved (`readlink -f`): lines "drbd /dev/drbd0" and "pv <name> <resolved>".
 * Fails as a whole when pvs or drbdadm fails.
 */
const PV_CHECK = oneLine([
  'set -e',
  'vg=$1 res=$2',
  'devs=$(drbdadm sh-dev "$res")',
  'pvs=$(pvs --noheadings -o pv_name --select "vg_name=$vg")',
  'for d in $devs; do echo "drbd $(readlink -f -- "$d")"; done',
  'for p in $pvs; do echo "pv $p $(readlink -f -- "$p")"; done',
]);

export function pvCheckArgv(vg: string, drbdResource: string): string[] {
  return ['sh', '-c', PV_CHECK, 'enssib-pvs', vg, drbdResource];
}

/** Why the volume group is not (only) on the DRBD device, in words; null when it is. */
export function pvProblem(r: RunResult, vg: string, drbdResource: string): string | null {
  if (r.exitCode !== 0) {
    const last = r.stderr.trim().split('\n').filter(Boolean).pop();
    return `cannot read the physical volumes of ${vg} and the device of DRBD resource ${drbdResource} (exit code ${r.exitCode}${last ? `: ${last.trim()}` : ''})`;
  }
  const drbd = new Set<string>();
  const pvs: { name: string; real: string }[] = [];
  for (const l of r.stdout.split('\n')) {
    const [kind, a, b] = l.trim().split(/\s+/);
    if (kind === 'drbd' && a) drbd.add(a);
    else if (kind === 'pv' && a) pvs.push({ name: a, real: b ?? a });
  }
  if (drbd.size === 0) return `DRBD resource ${drbdResource} has no device`;
  if (pvs.length === 0) return `volume group ${vg} has no physical volume`;
  const foreign = pvs.filter((p) => !drbd.has(p.real));
  if (foreign.length === 0) return null;
  return `volume group ${vg} has physical volume ${foreign.map((p) => (p.real !== p.name ? `${p.name} (${p.real})` : p.name)).join(', ')}, which is not the device of DRBD resource ${drbdResource} (${[...drbd].join(', ')}): a volume there would not be replicated`;
}

/** The filesystem recorded on the LV at creation (tag), if any. */
export function fsFromTags(tags: readonly string[]): Filesystem | null {
  const t = tags.find((x) => x.startsWith(FS_TAG_PREFIX));
  const v = t?.slice(FS_TAG_PREFIX.length);
  return v && (FILESYSTEMS as readonly string[]).includes(v) ? (v as Filesystem) : null;
}
