import { randomBytes } from 'node:crypto';

/**
 * The device identity of a volume: 128 random bits, generated once when the LV
 * is created and stored on the LV itself as an LVM tag, so that every export
 * (both storage servers, after a rebuild, a resize or a re-run) presents the
 * same SCSI identity, and a deleted-then-recreated volume gets a new one (a
 * stale multipath map on a worker can never adopt the new disk).
 *
 * Each target driver gets the identity in the form and length it accepts:
 * - SCST vdisk: `t10_dev_id` (at most 25 characters: the kernel buffer is
 *   16+8+2 bytes with the NUL) and `usn` (at most 20: MAX_USN_LEN is 20+1);
 * - LIO: the block backstore's `wwn` (VPD unit serial), which targetcli accepts
 *   only as a UUID; LIO derives the NAA designator — hence the multipath WWID —
 *   from the first 25 hex digits of that serial.
 */
export type Identity = string & { readonly __identity: unique symbol };

const HEX32 = /^[0-9a-f]{32}$/;

export const LIMITS = {
  scstT10DevId: 25,
  scstUsn: 20,
} as const;

/** The LVM tag prefix holding the identity; the tag is `enssib_id_<32 hex digits>`. */
export const ID_TAG_PREFIX = 'enssib_id_';
/** The LVM tag that marks an LV as a volume enssib manages. */
export const VOLUME_TAG = 'enssib';
/** The LV tag of a volume whose restore has not completed: its content is not a consistent state (never exported by volume create). */
export const RESTORING_TAG = 'enssib_restoring';
/** The LVM tag prefix holding the filesystem created with the volume (`enssib_fs_ext4`). */
export const FS_TAG_PREFIX = 'enssib_fs_';

export function isIdentity(v: unknown): v is Identity {
  return typeof v === 'string' && HEX32.test(v);
}

export function asIdentity(v: string): Identity {
  if (!isIdentity(v)) throw new Error(`not a device identity: ${JSON.stringify(v)}`);
  return v;
}

/** A new identity; `random` is injectable so that tests can be deterministic. */
export function newIdentity(random: (n: number) => Buffer = randomBytes): Identity {
  return asIdentity(random(16).toString('hex'));
}

/**
 * What a client dry run shows where a real run (and a server dry run) draws a
 * new random identity: the same command then prints the same plan, and two
 * dry runs can be compared with `diff`. Every form derived from it (LVM tag,
 * SCST `t10_dev_id`/`usn`, LIO `wwn`) shows the placeholder too. Only a plan
 * that contacts nothing carries it: it never reaches a host.
 */
export const NEW_IDENTITY = '<new identity>' as Identity;

export function identityTag(id: Identity): string {
  return `${ID_TAG_PREFIX}${id}`;
}

/** The identity stored in an LV's tags, or null when there is none. Two different identity tags are an error. */
export function identityFromTags(tags: readonly string[]): Identity | null {
  const found = [...new Set(tags.filter((t) => t.startsWith(ID_TAG_PREFIX)).map((t) => t.slice(ID_TAG_PREFIX.length)))];
  if (found.length === 0) return null;
  if (found.length > 1) throw new Error(`the LV carries ${found.length} identity tags (${found.join(', ')}); expected one`);
  const id = found[0] as string;
  if (!isIdentity(id)) throw new Error(`the LV's identity tag "${ID_TAG_PREFIX}${id}" is not 32 hex digits`);
  return id;
}

/** SCST vdisk attributes: the same on both storage servers. */
export function scstIdentity(id: Identity): { t10DevId: string; usn: string } {
  if (id === NEW_IDENTITY) return { t10DevId: id, usn: id };
  const t10DevId = id.slice(0, 24);
  const usn = id.slice(0, 16);
  // Guard the driver limits here, where the values are made.
  if (t10DevId.length > LIMITS.scstT10DevId || usn.length > LIMITS.scstUsn) throw new Error('SCST identity exceeds the driver limits');
  return { t10DevId, usn };
}

/** LIO block backstore `wwn` (VPD unit serial), in the UUID form targetcli accepts. */
export function lioSerial(id: Identity): string {
  if (id === NEW_IDENTITY) return id;
  return `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20, 32)}`;
}

/**
 * The WWID a Linux initiator computes for a LIO LUN with this identity: NAA
 * type 6, IEEE company id 0x001405, then the first 25 hex digits of the unit
 * serial (target_core_spc.c, spc_gen_naa_6h_vendor_specific), prefixed with
 * "3" by scsi_id.
 */
export function lioWwid(id: Identity): string {
  return `36001405${id.slice(0, 25)}`;
}
