import type * as Commander from 'commander';
import { createRequire } from 'node:module';
import type { DryRun, GlobalOptions } from '../context.js';
import { ExitCode, SIGNAL_EXIT, UsageError, type InterruptSignal } from '../errors.js';
import { quietOnBrokenPipe, writeUnlessClosed } from '../ui/output.js';
import type { Invocation } from '../usecase.js';
import { COMMANDS, type CommandSpec } from './commands.js';
import { exitCodesLine } from './exit-codes.js';
import { requireCjs } from '../require.js';

const { Command, CommanderError, InvalidArgumentError, Option } = requireCjs('commander') as typeof Commander;
type Command = Commander.Command;

const GROUPS: Record<string, string> = {
  node: 'workers: bootstrap and list',
  image: 'service images: build and push to the private registry',
  service: 'services: deploy, diff, status, list, expose, new',
  secret: 'Secrets from files (contents never shown)',
  volume: 'iSCSI volumes on the storage servers',
  lock: 'the storage lock on the metadata host: status, break',
  backup: 'LVM snapshot backups',
  inventory: 'inventory.yaml: check and show',
};

export interface MainIO {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
  isTTY?: boolean;
}

/** "0.1.0 (commit 287245f…)": the package version and the git commit dist/ was built from (scripts/build-info.mjs). */
export function version(): string {
  const req = createRequire(import.meta.url);
  const v = (req('../../package.json') as { version: string }).version;
  let build: { commit?: string; modified?: boolean } = {};
  try {
    build = req('../build-info.json') as typeof build;
  } catch {
    // built without scripts/build-info.mjs (a bare tsc): no commit to show
  }
  const commit = build.commit && build.commit !== 'unknown' ? `commit ${build.commit}${build.modified ? ' with uncommitted changes' : ''}` : 'commit unknown';
  return `${v} (${commit})`;
}

function nonEmpty(what: string) {
  return (v: string): string => {
    if (v.trim() === '') throw new InvalidArgumentError(`${what} is empty`);
    return v;
  };
}

function parseConcurrency(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 256) throw new InvalidArgumentError('expected a whole number from 1 to 256');
  return n;
}

const DRY_RUN_MODES = ['client', 'server'] as const;

/** `--dry-run=server` → `--dry-run --dry-run-mode server`, so that a bare --dry-run never swallows the next word. */
export function expandDryRun(argv: string[]): string[] {
  const end = argv.indexOf('--');
  return argv.flatMap((a, i) => {
    const m = end >= 0 && i > end ? null : /^--dry-run=(.*)$/.exec(a);
    if (!m) return [a];
    const mode = m[1] ?? '';
    if (!(DRY_RUN_MODES as readonly string[]).includes(mode)) {
      const near = DRY_RUN_MODES.find((d) => d.slice(0, 3) === mode.slice(0, 3));
      throw new UsageError(`--dry-run takes "client" or "server", not ${JSON.stringify(mode)}`, near ? [`Did you mean --dry-run=${near}?`] : []);
    }
    return ['--dry-run', '--dry-run-mode', mode];
  });
}

function globalOptionList(): Commander.Option[] {
  return [
    new Option('-i, --inventory <path>', 'inventory file (default: $ENSSIB_INVENTORY, then ./inventory.yaml)').argParser(nonEmpty('the inventory path')),
    new Option('-n, --dry-run', 'show the exact commands per host and contact nothing (--dry-run=server also reads facts)'),
    new Option('--dry-run-mode <mode>').choices([...DRY_RUN_MODES]).hideHelp(),
    new Option('-y, --yes', 'answer yes to confirmations; never prompt'),
    new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'),
    new Option('-c, --concurrency <n>', 'hosts worked on at once').argParser(parseConcurrency).default(10),
    new Option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, the inventory, ~/.kube/config)'),
    new Option('--context <name>', 'kubeconfig context'),
    new Option('--no-color', 'no colours (also NO_COLOR=1)'),
    new Option('-v, --verbose', 'more detail, full build output, stack traces'),
  ];
}

/** The global options' flags, split into those that take a value and those that do not (for invokedCommand). */
const GLOBAL_FLAGS = {
  value: new Set(['-i', '--inventory', '--dry-run-mode', '-o', '--output', '-c', '--concurrency', '--kubeconfig', '--context']),
  bare: new Set(['-n', '--dry-run', '-y', '--yes', '--no-color', '-v', '--verbose']),
};

/**
 * The command an argument list invokes, when it plainly names one: global
 * options (each one known, its value in the next word) and then the command's
 * words. Only that command is then built into the parser: building the whole
 * tree (every command's options) is a good part of a quick command's start-up.
 * Anything else (help, completion, an unknown word or option, a typo) gets the
 * whole tree, for its help and suggestions.
 */
export function invokedCommand(argv: readonly string[]): CommandSpec[] | undefined {
  let i = 0;
  while (i < argv.length && (argv[i] as string).startsWith('-')) {
    const a = argv[i] as string;
    if (a.startsWith('--') && a.includes('=') && GLOBAL_FLAGS.value.has(a.slice(0, a.indexOf('=')))) i += 1;
    else if (GLOBAL_FLAGS.value.has(a)) i += 2;
    else if (GLOBAL_FLAGS.bare.has(a)) i += 1;
    else return undefined;
  }
  const [first, second] = [argv[i], argv[i + 1]];
  const spec = COMMANDS.find((c) => c.path[0] === first && (c.path.length === 1 || c.path[1] === second));
  return spec ? [spec] : undefined;
}

/**
 * The command-line parser. Given the argument list, only the command it
 * invokes is built (see invokedCommand); without, every command.
 */
export function buildProgram(run: (spec: CommandSpec, inv: Invocation, cmd: Command) => Promise<void>, io: MainIO = {}, argv?: readonly string[]): Command {
  const program = new Command('enssib');
  // Set before any subcommand is added: subcommands copy these settings.
  program.exitOverride();
  program.configureOutput({
    writeOut: (s) => writeUnlessClosed(io.stdout ?? process.stdout, s),
    writeErr: (s) => writeUnlessClosed(io.stderr ?? process.stderr, s),
  });
  program
    .description('Run the enssib cluster from the files in git: workers, images, services, iSCSI volumes, backups.')
    .version(version(), '-V, --version');
  for (const o of globalOptionList()) program.addOption(o);
  program
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  enssib inventory check',
        '  enssib volume create mail 200G --dry-run',
        '  enssib service deploy ldap --dry-run',
        '  enssib doctor',
        '  enssib                      (in a terminal: a menu of the commands)',
        '',
        ...exitCodesLine(),
        'More: enssib help <command>, enssib help exit-codes|inventory|hazards|sizes',
      ].join('\n'),
    );

  const groups = new Map<string, Command>();
  const only = argv && invokedCommand(argv);
  for (const spec of only || COMMANDS) {
    let parent = program;
    if (spec.path.length > 1) {
      const g = spec.path[0] as string;
      let group = groups.get(g);
      if (!group) {
        group = program.command(g).description(GROUPS[g] ?? g);
        groups.set(g, group);
      }
      parent = group;
    }
    const leaf = parent.command(spec.path[spec.path.length - 1] as string).description(spec.summary);
    for (const a of spec.args ?? []) leaf.argument(a.syntax, a.description);
    for (const o of spec.options ?? []) {
      const opt = new Option(o.flags, o.description);
      if (o.choices) opt.choices(o.choices);
      if (o.default !== undefined) opt.default(o.default);
      leaf.addOption(opt);
    }
    leaf.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  ${e}`).join('\n')}`);
    leaf.action(async (...params: unknown[]) => {
      const cmd = params[params.length - 1] as Command;
      const args = params.slice(0, (spec.args ?? []).length) as Invocation['args'];
      await run(spec, { args, opts: cmd.opts() }, cmd);
    });
  }

  program.helpCommand(false);
  // help and completion are never what an argument list that names a command runs.
  if (only) return program;
  program
    .command('help')
    .description('help on a command, or a topic: exit-codes, inventory, hazards, sizes')
    .argument('[topic...]', 'a command (volume create) or a topic')
    .addHelpText('after', '\nExamples:\n  enssib help volume create\n  enssib help exit-codes\n  enssib help inventory')
    .action(async (topic: string[]) => {
      const write = (t: string) => writeUnlessClosed(io.stdout ?? process.stdout, t);
      const words = topic ?? [];
      if (words.length === 0) return program.outputHelp();
      const { TOPICS } = await import('./reference.js');
      const t = TOPICS.find((x) => x.name === words.join(' '));
      if (t) return write([t.title, '', ...t.lines(), ''].join('\n'));
      let cmd: Command | undefined = program;
      for (const w of words) cmd = cmd?.commands.find((c) => c.name() === w && c.name() !== '__complete');
      if (!cmd) {
        throw new UsageError(`no help on "${words.join(' ')}"`, [`Topics: ${TOPICS.map((x) => x.name).join(', ')}; or a command, e.g. enssib help volume create.`]);
      }
      // outputHelp() runs the "after" hooks that add the examples; helpInformation() alone would not.
      cmd.outputHelp();
    });
  program
    .command('completion')
    .description('print the shell completion script')
    .argument('<shell>', 'bash or zsh')
    .addHelpText('after', '\nExamples:\n  enssib completion bash > /etc/bash_completion.d/enssib\n  source <(enssib completion zsh)')
    .action(async (shell: string) => {
      const { completionScript } = await import('./completion.js');
      process.stdout.write(completionScript(shell));
    });
  program
    .command('__complete', { hidden: true })
    .argument('[words...]')
    .helpOption(false)
    .allowUnknownOption()
    .action(async (words: string[]) => {
      const { complete } = await import('./completion.js');
      process.stdout.write(complete(program, words ?? [], process.env, process.cwd()).map((w) => `${w}\n`).join(''));
    });
  return program;
}

function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}

export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  let dryRun: DryRun = false;
  if (o.dryRun || o.dryRunMode) dryRun = (o.dryRunMode as 'client' | 'server' | undefined) ?? 'client';
  return {
    ...(typeof o.inventory === 'string' ? { inventory: o.inventory } : {}),
    dryRun,
    yes: o.yes === true,
    output: o.output === 'json' ? 'json' : 'text',
    concurrency: typeof o.concurrency === 'number' ? o.concurrency : 10,
    ...(rootOf(cmd).getOptionValueSource('concurrency') === 'cli' ? { concurrencyGiven: true } : {}),
    color: o.color !== false,
    verbose: o.verbose === true,
    ...(typeof o.kubeconfig === 'string' ? { kubeconfig: o.kubeconfig } : {}),
    ...(typeof o.context === 'string' ? { context: o.context } : {}),
  };
}


/**
 * Ctrl-C, SIGTERM and SIGHUP, in three steps. The first: start nothing new,
 * let the commands in flight finish (a wait such as for the storage lock is
 * cancelled), then undo what the run did and run its cleanup (lock release)
 * and journal record. The second: cancel the commands in flight too (each is
 * stopped on its host); undo, cleanup and journal still run. The third: quit
 * at once. The ssh clients run in their own process group, so a Ctrl-C in the
 * terminal reaches enssib only.
 */
function interruptions(stderr: NodeJS.WritableStream) {
  const abort = new AbortController();
  const cancel = new AbortController();
  let count = 0;
  const state: { code: number | undefined } = { code: undefined };
  const say = (t: string) => {
    try {
      stderr.write(`\n${t}\n`);
    } catch {
      /* the terminal is gone (SIGHUP) */
    }
  };
  const ignore = () => undefined;
  const on = (sig: InterruptSignal) => {
    count++;
    state.code ??= SIGNAL_EXIT[sig];
    // After a hang-up, writes to the terminal fail: they must not end the cleanup.
    if (sig === 'SIGHUP') for (const s of [process.stdout, process.stderr]) s.on('error', ignore);
    const what = sig === 'SIGINT' ? 'interrupted' : `${sig} received`;
    if (count === 1) {
      say(`${what}: starting no new command; the commands in flight finish, then what this run did is undone and its locks released (Ctrl-C again to cancel the commands in flight)`);
      // The signal's name is the reason: the run's report and journal record say 143 or 129, as the exit does.
      abort.abort(sig);
    } else if (count === 2) {
      say(`${what} again: cancelling the commands in flight (stopped on their hosts); undo and lock release still run (Ctrl-C again to quit at once and leave them)`);
      cancel.abort();
    } else {
      say(`${what} a third time: quitting now; partial changes and the storage lock may be left (see the journal)`);
      process.exit(state.code);
    }
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, () => on(sig)] as const);
  return {
    signal: abort.signal,
    cancel: cancel.signal,
    get code() {
      return state.code;
    },
    listen: () => handlers.forEach(([sig, h]) => process.on(sig, h)),
    stop: () => handlers.forEach(([sig, h]) => process.off(sig, h)),
  };
}

/** The whole CLI: parses argv, runs one use case, prints errors, resolves the exit code. */
export async function main(argv: string[], io: MainIO = {}): Promise<number> {
  const env = io.env ?? process.env;
  quietOnBrokenPipe(io.stdout ?? process.stdout);
  quietOnBrokenPipe(io.stderr ?? process.stderr);
  const isTTY = io.isTTY ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
  if (argv.length === 0 && isTTY) {
    const { menu, offerApply } = await import('./menu.js');
    const chosen = await menu(env);
    if (chosen === 'quit') return ExitCode.ok;
    if (chosen === 'interrupted') return ExitCode.interrupted;
    const code = await main(chosen.argv, io);
    if (!chosen.dryRun || code !== ExitCode.ok) return code;
    const again = await offerApply(chosen.argv);
    if (again === 'no') return code;
    if (again === 'interrupted') return ExitCode.interrupted;
    return main(again, io);
  }
  let code: number = ExitCode.ok;
  let expanded: string[];
  try {
    expanded = expandDryRun(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    writeUnlessClosed(io.stderr ?? process.stderr, [`error: ${e.message}`, ...e.details.map((d) => `  ${d}`), ''].join('\n'));
    return ExitCode.usage;
  }
  const signals = interruptions(io.stderr ?? process.stderr);
  const program = buildProgram(async (spec, inv, cmd) => {
    const opts = globalOptions(cmd);
    // The handler's modules load while the context is made (most of a quick
    // command's start-up is loading modules); a failure to load surfaces below, in order.
    const handlerLoad = spec.handler();
    handlerLoad.catch(() => undefined);
    const valuesLoad = import('./values.js');
    valuesLoad.catch(() => undefined);
    const [{ createOutput }, { createPrompter }, { createContext }, { printError }, { inventoryLoader }, hosts] = await Promise.all([
      import('../ui/output.js'),
      import('../ui/prompt.js'),
      import('../context.js'),
      import('../ui/errors.js'),
      import('../inventory/cache.js'),
      spec.noSsh ? undefined : import('../remote/pool.js').then((m) => m.sshPool),
    ]);
    const out = createOutput({ format: opts.output, color: opts.color && !(env.NO_COLOR ?? '').length, verbose: opts.verbose });
    const ctx = createContext({
      opts,
      out,
      prompt: createPrompter({ yes: opts.yes, isTTY }),
      env,
      argv: ['enssib', ...argv],
      signal: signals.signal,
      cancel: signals.cancel,
      inventory: await inventoryLoader(opts.inventory, env, process.cwd()),
      ...(hosts ? { hosts } : {}),
    });
    signals.listen();
    try {
      const { checkInvocation } = await valuesLoad;
      checkInvocation(spec, inv);
      const handler = await handlerLoad;
      code = await handler(ctx, inv);
    } catch (e) {
      code = printError(out, e);
    } finally {
      signals.stop();
    }
    // An interrupted run exits with the code of the signal that interrupted it.
    if (code === ExitCode.interrupted && signals.code !== undefined) code = signals.code;
  }, io, expanded);
  try {
    await program.parseAsync(expanded, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (e instanceof UsageError) {
      writeUnlessClosed(io.stderr ?? process.stderr, [`error: ${e.message}`, ...e.details.map((d) => `  ${d}`), ''].join('\n'));
      return ExitCode.usage;
    }
    throw e;
  }
  return code;
}
