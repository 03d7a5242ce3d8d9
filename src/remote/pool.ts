import type { Inventory } from '../inventory/inventory.js';
import { SshHost } from './ssh.js';
import type { Host } from './types.js';

/** Hands out one Host per inventory host name, created on first use. */
export interface HostPool {
  get(name: string): Host;
  closeAll(): Promise<void>;
}

export function sshPool(inv: Inventory, opts: { share?: boolean } = {}): HostPool {
  const hosts = new Map<string, Host>();
  return {
    get(name) {
      let h = hosts.get(name);
      if (!h) {
        h = new SshHost(inv.ssh(name), opts);
        hosts.set(name, h);
      }
      return h;
    },
    async closeAll() {
      await Promise.all([...hosts.values()].map((h) => h.close()));
      hosts.clear();
    },
  };
}
