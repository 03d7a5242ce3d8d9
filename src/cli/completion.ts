import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { recentVolumes } from '../recent-volumes.js';
import { UsageError } from '../errors.js';
import { locateInventory, loadInventory } from '../inventory/load.js';
import { COMMANDS, type ValueKind } from './commands.js';
import { commandWords } from './values.js';

/**
 * Shell scripts that ask `enssib __complete` for candidates. When enssib answers
 * FILES, the shell completes file names itself (for --inventory, --kubeconfig).
 */
export function completionScript(shell: string): string {
  if (shell === 'bash') {
    return `# enssib bash completion. Needs \`enssib\` on PATH (npm install -g . or npm link in the checkout).
# Load it:  source <(enssib completion bash)     (add that line to ~/.bashrc)
_enssib_complete() {
  local IFS=$'\\n'
  local reply
  reply=( $(enssib __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
  if [[ "\${reply[0]}" == "${FILES}" ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=( $(compgen -f -- "\${COMP_WORDS[COMP_CWORD]}") )
  else
    COMPREPLY=( "\${reply[@]}" )
  fi
}
complete -F _enssib_complete enssib
`;
  }
  if (shell === 'zsh') {
    return `#compdef enssib
# enssib zsh completion. Needs \`enssib\` on PATH (npm install -g . or npm link in the checkout).
# Load it:  autoload -Uz compinit && compinit; source <(enssib completion zsh)     (add to ~/.zshrc)
_enssib() {
  local -a candidates
  candidates=("\${(@f)$(enssib __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ "\${candidates[1]}" == "${FILES}" ]]; then
    _files
  else
    compadd -a candidates
  fi
}
compdef _enssib enssib
`;
  }
  throw new UsageError(`no completion for shell "${shell}"`, ['Supported: bash, zsh.']);
}

/** The answer that tells the shell to complete file names itself. */
export const FILES = '__files__';

const takesValue = (o: Option) => o.required || o.optional;

function findOption(cmd: Command, program: Command, word: string): Option | undefined {
  return [...cmd.options, ...program.options].find((o) => o.long === word || o.short === word);
}

/** Candidates for the last word, given the words typed after "enssib". */
export function complete(program: Command, typed: string[], env: NodeJS.ProcessEnv, cwd: string): string[] {
  // bash splits "--inventory=x" at "=": drop the "=" so that x reads as the option's value.
  const words = typed.filter((w, i) => !(w === '=' && typed[i - 1]?.startsWith('--')));
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  let inventoryFlag: string | undefined;
  let cmd: Command = program;
  let argsSeen = 0;
  let pendingValueOf: Option | undefined;
  for (let i = 0; i < before.length; i++) {
    const w = before[i] as string;
    if (w.startsWith('-') && w !== '-') {
      const opt = findOption(cmd, program, w);
      if (!opt || !takesValue(opt)) continue;
      if (i === before.length - 1) pendingValueOf = opt;
      else if (opt.long === '--inventory') inventoryFlag = before[++i];
      else i++;
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === w);
    if (sub && argsSeen === 0) cmd = sub;
    else argsSeen++;
  }
  const where = { inventoryFlag, env, cwd };
  const pick = (xs: string[]) => [...new Set(xs)].filter((x) => x.startsWith(current)).sort();
  const spec = COMMANDS.find((s) => s.path.join(' ') === pathOf(cmd, program).join(' '));

  if (pendingValueOf) {
    const opt = pendingValueOf;
    if (opt.argChoices) return pick(opt.argChoices);
    if (opt.long === '--inventory' || opt.long === '--kubeconfig') return [FILES];
    const kind = spec?.options?.find((o) => o.flags.split(/[ ,]+/).includes(opt.long ?? ''))?.value;
    if (kind === 'hosts') {
      // a comma-separated list: complete the name after the last comma
      const head = current.slice(0, current.lastIndexOf(',') + 1);
      const done = head.split(',');
      return pick(values('host', where).filter((h) => !done.includes(h)).map((h) => head + h));
    }
    return kind ? pick(values(kind, where)) : [];
  }
  if (current.startsWith('-')) {
    const flags = [...cmd.options, ...program.options].filter((o) => !o.hidden).flatMap((o) => [o.long, o.short]);
    return pick(flags.filter((f): f is string => !!f));
  }
  if (cmd.commands.length > 0) return pick(cmd.commands.filter((c) => c.name() !== '__complete').map((c) => c.name()));
  const args = spec?.args ?? [];
  const arg = args[Math.min(argsSeen, args.length - 1)];
  if (!arg || (argsSeen >= args.length && !arg.syntax.includes('...'))) return [];
  return pick(values(arg.value ?? 'text', where));
}

function pathOf(cmd: Command, program: Command): string[] {
  const path: string[] = [];
  for (let c: Command | null = cmd; c && c !== program; c = c.parent) path.unshift(c.name());
  return path;
}

interface Where {
  inventoryFlag: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

function values(kind: ValueKind, where: Where): string[] {
  if (kind === 'command') return commandWords();
  if (!['host', 'hosts', 'worker', 'node', 'service', 'volume'].includes(kind)) return kind === 'file' ? [FILES] : [];
  try {
    const inv = loadInventory(locateInventory(where.inventoryFlag, where.env, where.cwd), where.env);
    if (kind === 'host' || kind === 'hosts') return inv.hosts.map((h) => h.name);
    if (kind === 'worker' || kind === 'node') return inv.workers().map((h) => h.name);
    if (kind === 'volume') return recentVolumes(where.env, inv.file);
    return readdirSync(join(inv.root, 'services'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}
