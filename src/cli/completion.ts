import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { locateInventory, loadInventory } from '../inventory/load.js';
import { COMMANDS, type Completion } from './commands.js';

/** Shell scripts that ask `enssib __complete` for candidates (commands, hosts, services). */
export function completionScript(shell: string): string {
  if (shell === 'bash') {
    return `# enssib bash completion: source this file, or put it in /etc/bash_completion.d/enssib
_enssib_complete() {
  local IFS=$'\\n'
  COMPREPLY=( $(enssib __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
}
complete -o default -F _enssib_complete enssib
`;
  }
  if (shell === 'zsh') {
    return `#compdef enssib
# enssib zsh completion: source <(enssib completion zsh)
_enssib() {
  local -a candidates
  candidates=("\${(@f)$(enssib __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _enssib enssib
`;
  }
  throw new UsageError(`no completion for shell "${shell}"`, ['Supported: bash, zsh.']);
}

/** Candidates for the last word, given the words typed after "enssib". */
export function complete(program: Command, words: string[], env: NodeJS.ProcessEnv, cwd: string): string[] {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  let inventoryFlag: string | undefined;
  const positional: string[] = [];
  for (let i = 0; i < before.length; i++) {
    const w = before[i] as string;
    if (w === '-i' || w === '--inventory') inventoryFlag = before[++i];
    else if (w.startsWith('--inventory=')) inventoryFlag = w.slice(12);
    else if (!w.startsWith('-')) positional.push(w);
  }
  let cmd: Command = program;
  let depth = 0;
  while (depth < positional.length) {
    const next = cmd.commands.find((c) => c.name() === positional[depth]);
    if (!next) break;
    cmd = next;
    depth++;
  }
  const pick = (xs: string[]) => xs.filter((x) => x.startsWith(current)).sort();
  if (current.startsWith('-')) {
    const flags = [...cmd.options, ...program.options].flatMap((o) => [o.long, o.short]).filter((f): f is string => !!f && f !== '--dry-run-mode');
    return pick([...new Set(flags)]);
  }
  if (cmd.commands.length > 0) return pick(cmd.commands.filter((c) => c.name() !== '__complete').map((c) => c.name()));
  const path = positional.slice(0, depth);
  const spec = COMMANDS.find((s) => s.path.join(' ') === path.join(' '));
  const argIndex = positional.length - depth;
  const args = spec?.args ?? [];
  const arg = args[Math.min(argIndex, args.length - 1)];
  if (!arg || (argIndex >= args.length && !arg.syntax.includes('...'))) return [];
  return pick(candidates(arg.complete ?? 'none', inventoryFlag, env, cwd));
}

function candidates(kind: Completion, inventoryFlag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string[] {
  if (kind === 'none') return [];
  try {
    const inv = loadInventory(locateInventory(inventoryFlag, env, cwd), env);
    if (kind === 'hosts') return inv.hosts.map((h) => h.name);
    if (kind === 'workers') return inv.workers().map((h) => h.name);
    return readdirSync(join(inv.root, 'services'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}
