import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/inventory.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** Helpers for tests that run against the hosts lab (real OpenSSH servers in containers). */
export function hostsLab() {
  const state = inject('hostsLab');
  const inventoryFile = join(state, 'inventory.yaml');
  return {
    state,
    inventoryFile,
    standIns: join(state, 'stand-ins', 'bin'),
    inventory(): Inventory {
      return loadInventory({ path: inventoryFile, source: '--inventory' }, {});
    },
    /** A copy of the lab inventory with text replaced (e.g. another ssh user), in a temp folder. */
    variant(edit: (text: string) => string): string {
      const dir = mkdtempSync(join(tmpdir(), 'enssib-inv-'));
      const file = join(dir, 'inventory.yaml');
      writeFileSync(file, edit(readFileSync(inventoryFile, 'utf8')));
      return file;
    },
    docker(...args: string[]): string {
      return execFileSync('docker', args, { encoding: 'utf8' });
    },
    /** Runs up.sh again: brings stopped containers back and rewrites ssh_config with their ports. */
    restore(): void {
      execFileSync('bash', [join(ROOT, 'test/lab/hosts/up.sh'), '--state', state], { stdio: ['ignore', 'ignore', 'inherit'] });
    },
  };
}
