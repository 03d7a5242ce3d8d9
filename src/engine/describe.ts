import { createHash } from 'node:crypto';
import { quote } from '../remote/quote.js';
import type { Host } from '../remote/types.js';
import type { Action } from './types.js';

/** A check as the command line that would run on the host. */
export function describeCheck(host: Host | null, argv: string[]): string {
  return host ? host.describe(argv, { sudo: true }) : quote(argv);
}

/** One action as one line: the exact command, the file written, or the task's own words. */
export function describeAction(host: Host | null, a: Action): string {
  switch (a.kind) {
    case 'command': {
      const line = host ? host.describe(a.argv, a.sudo === undefined ? {} : { sudo: a.sudo }) : quote(a.argv);
      const input = a.input !== undefined ? ` <<< (${Buffer.byteLength(a.input)} bytes on stdin)` : '';
      // A step that runs only under a condition says so (a client dry run cannot know yet).
      const when = a.label?.startsWith('if ') ? `   # only ${a.label}` : '';
      return `${line}${input}${when}`;
    }
    case 'file': {
      const body = typeof a.file.content === 'string' ? Buffer.from(a.file.content) : a.file.content;
      const sha = createHash('sha256').update(body).digest('hex').slice(0, 12);
      return `write ${a.file.path} (mode ${a.file.mode ?? '0644'}, owner ${a.file.owner ?? 'root:root'}, ${body.length} bytes, sha256 ${sha}…)`;
    }
    case 'task':
      return [a.label, ...a.lines.map((l) => `  ${l}`)].join('\n');
  }
}
