/**
 * `backup.destination`: where backups go, as seen from the metadata storage
 * server. Either an absolute folder on that server (`/srv/backup`), or a
 * folder on a backup host reached over ssh from it:
 * `ssh://[user@]host[:port]/absolute/folder`. Nothing else (no `host:path`
 * shorthand): one form, checked strictly, since its parts end up in command
 * lines on the storage server and on the backup host.
 */
export type BackupDestination = { kind: 'local'; path: string } | { kind: 'ssh'; user: string | null; host: string; port: number | null; path: string };

/** Folder names: letters, digits and . _ - + @ (no spaces, no quotes, no shell characters, ASCII only). */
const SEGMENT = /^[A-Za-z0-9._+@-]+$/;
/** A user name as Debian's adduser accepts by default. */
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
/** A DNS name (labels of letters, digits and "-", never starting with "-") or an IPv4 address. */
const HOST = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function folder(p: string): string | { error: string } {
  if (!p.startsWith('/')) return { error: 'expected an absolute folder' };
  const parts = p.split('/').filter((s) => s !== '');
  if (parts.length === 0) return { error: 'expected a folder other than /' };
  const bad = parts.find((s) => s === '.' || s === '..' || !SEGMENT.test(s));
  if (bad !== undefined) return { error: `the folder name ${JSON.stringify(bad.slice(0, 40))} is not accepted (letters, digits and . _ - + @ only; no "." or ".." folders)` };
  return `/${parts.join('/')}`;
}

/** The destination, or why it is refused (a sentence for the inventory error). */
export function parseBackupDestination(value: string): BackupDestination | { error: string } {
  const hint = 'expected an absolute folder on the metadata storage server (/srv/backup) or ssh://[user@]host[:port]/folder on a backup host';
  if (value.startsWith('ssh://')) {
    const m = /^ssh:\/\/(?:([^@/]*)@)?([^:/]*)(?::([^/]*))?(\/.*)?$/.exec(value);
    if (!m) return { error: hint };
    const [, user, host, port, path] = m;
    if (user !== undefined && !USER.test(user)) return { error: `the user ${JSON.stringify(user.slice(0, 40))} is not a user name (lowercase letters, digits, _ and -)` };
    if (!host || !HOST.test(host)) return { error: `the host ${JSON.stringify((host ?? '').slice(0, 60))} is not a host name or IPv4 address` };
    let portNo: number | null = null;
    if (port !== undefined) {
      portNo = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
      if (!(portNo >= 1 && portNo <= 65535)) return { error: `the port ${JSON.stringify(port.slice(0, 20))} is not a port (1 to 65535)` };
    }
    const f = folder(path ?? '');
    if (typeof f !== 'string') return { error: `${f.error} on the backup host, such as ssh://backup@backup1/srv/enssib` };
    return { kind: 'ssh', user: user ?? null, host, port: portNo, path: f };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) return { error: hint };
  const f = folder(value);
  if (typeof f !== 'string') return { error: `${f.error}; ${hint}` };
  return { kind: 'local', path: f };
}

/**
 * A file on the metadata storage server named in the inventory that ends up in
 * command lines there (`backup.borg.passphraseFile`): an absolute path checked
 * as the destination's folders are. The normalised path, or why it is refused.
 */
export function parseAbsoluteFile(value: string): string | { error: string } {
  const f = folder(value);
  if (typeof f !== 'string') return { error: f.error.replace('an absolute folder', 'an absolute file path').replace('a folder other than /', 'a file, not /').replace('the folder name', 'the name') };
  return value.endsWith('/') ? { error: 'expected a file, not a folder (it ends with /)' } : f;
}

/** The destination as the inventory writes it, normalised (for messages). */
export function destinationText(d: BackupDestination): string {
  if (d.kind === 'local') return d.path;
  return `ssh://${d.user ? `${d.user}@` : ''}${d.host}${d.port ? `:${d.port}` : ''}${d.path}`;
}
