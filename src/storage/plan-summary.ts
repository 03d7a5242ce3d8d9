import { formatBytes } from '../validate.js';
import type { VolumeSite } from './volume.js';

/**
 * The last line of a volume dry run, in the manner of `terraform plan`: what
 * would be created, changed and destroyed, and where — so that a reviewer reads
 * the outcome without reading every command.
 */
function where(site: VolumeSite): string {
  const servers = site.servers.map((s) => s.name).join(', ');
  const workers = site.workers.length;
  return `exported by ${site.servers.length} storage server${site.servers.length === 1 ? '' : 's'} (${servers}); ${workers} worker${workers === 1 ? '' : 's'}`;
}

export function createSummary(site: VolumeSite, req: { name: string; sizeBytes: number; fs: string; pv: boolean }): string {
  const fs = req.fs === 'none' ? 'no filesystem' : req.fs;
  return `Plan: 1 volume to create: ${req.name}, ${formatBytes(req.sizeBytes)} on ${site.vg} (${fs}); ${where(site)}${req.pv ? '; 1 PersistentVolume' : ''}; nothing destroyed.`;
}

export function resizeSummary(site: VolumeSite, req: { name: string; sizeBytes: number; growFs: boolean }): string {
  const fs = req.growFs ? 'the filesystem grown where it is mounted (--grow-fs)' : 'the filesystem left as it is (without --grow-fs)';
  return `Plan: 1 volume to grow: ${req.name} to ${formatBytes(req.sizeBytes)} on ${site.vg}; ${where(site)}; ${fs}; nothing destroyed.`;
}

export function deleteSummary(site: VolumeSite, req: { name: string }, yes: boolean): string[] {
  return [
    `Plan: 1 volume to DESTROY: ${req.name} — LV ${site.vg}/${req.name} and ALL ITS DATA; its exports on ${site.servers.map((s) => s.name).join(', ')}; the target on ${site.workers.length} worker${site.workers.length === 1 ? '' : 's'}.`,
    yes ? 'The real run will not ask (--yes).' : 'The real run asks for confirmation first; without a terminal it needs --yes.',
  ];
}
