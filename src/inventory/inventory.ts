import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { HostData, InventoryData, Role } from './schema.js';
import { ConfigError } from '../errors.js';

/** How ssh reaches one host: everything the remote layer needs, resolved. */
export interface SshTarget {
  name: string;
  /** Host name or ~/.ssh/config alias given to ssh. */
  target: string;
  port?: number;
  user?: string;
  configFile?: string;
  knownHostsFile?: string;
  connectTimeoutS: number;
  commandTimeoutS: number;
  controlPersistS: number;
}

/** The loaded, validated inventory with the queries commands need. */
export class Inventory {
  readonly data: InventoryData;
  readonly file: string;
  private readonly resolvePath: (p: string) => string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(data: InventoryData, file: string, resolvePath: (p: string) => string, env: NodeJS.ProcessEnv) {
    this.data = data;
    this.file = file;
    this.resolvePath = resolvePath;
    this.env = env;
  }

  get hosts(): HostData[] {
    return this.data.hosts;
  }

  host(name: string): HostData {
    const h = this.data.hosts.find((x) => x.name === name);
    if (!h) {
      throw new ConfigError(`no host "${name}" in ${this.file}`, [`Known hosts: ${this.data.hosts.map((x) => x.name).join(', ')}`]);
    }
    return h;
  }

  withRole(role: Role): HostData[] {
    return this.data.hosts.filter((h) => h.roles.includes(role));
  }

  workers(): HostData[] {
    return this.withRole('worker');
  }

  storageServers(): HostData[] {
    return this.withRole('storage');
  }

  masters(): HostData[] {
    return this.withRole('master');
  }

  metadataHost(): HostData {
    return this.host(this.data.storage.metadataHost);
  }

  podSubnet(name: string): string {
    const h = this.host(name);
    if (!h.podSubnet) throw new ConfigError(`host "${name}" has no podSubnet in ${this.file}`);
    return h.podSubnet;
  }

  /** A path from the inventory (CA file, kubeconfig, journal), resolved against the inventory's folder. */
  path(p: string): string {
    return this.resolvePath(p);
  }

  /** The folder the inventory lives in: services/ and templates/ are found beside it. */
  get root(): string {
    return this.resolvePath('.');
  }

  journalFile(): string | undefined {
    return this.data.journal ? this.resolvePath(this.data.journal) : undefined;
  }

  ssh(name: string): SshTarget {
    const h = this.host(name);
    const s = this.data.ssh ?? {};
    const envConfig = this.env.ENSSIB_SSH_CONFIG;
    const envKnown = this.env.ENSSIB_SSH_KNOWN_HOSTS;
    const user = h.ssh?.user ?? s.user;
    const port = h.ssh?.port;
    const configFile = envConfig ? envConfig : s.config ? this.resolvePath(s.config) : undefined;
    const knownHostsFile = envKnown ? envKnown : s.knownHosts ? this.resolvePath(s.knownHosts) : undefined;
    return {
      name: h.name,
      target: h.ssh?.host ?? h.name,
      ...(port !== undefined ? { port } : {}),
      ...(user !== undefined ? { user } : {}),
      ...(configFile !== undefined ? { configFile } : {}),
      ...(knownHostsFile !== undefined ? { knownHostsFile } : {}),
      connectTimeoutS: s.connectTimeout ?? 10,
      commandTimeoutS: s.commandTimeout ?? 300,
      controlPersistS: s.controlPersist ?? 60,
    };
  }
}

/** The inventory of validated data read from `file`: paths in it are relative to its folder, `~` is $HOME. */
export function inventoryOf(data: InventoryData, file: string, env: NodeJS.ProcessEnv): Inventory {
  const dir = dirname(file);
  const home = env.HOME ?? homedir();
  const resolvePath = (p: string) => (p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : isAbsolute(p) ? p : resolve(dir, p));
  return new Inventory(data, file, resolvePath, env);
}
