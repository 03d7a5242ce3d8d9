import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, ConnectionError, InterruptedError, OperationError, TimeoutError } from '../errors.js';
import type { SshTarget } from '../inventory/inventory.js';
import { whenAborted } from './abort.js';
import { quote, quoteArg } from './quote.js';
import type { FileSpec, Host, RunOptions, RunResult, StreamOptions, StreamResult, UploadOutcome } from './types.js';

/**
 * A host reached through the system OpenSSH client. Many commands share one
 * connection (ControlMaster/ControlPersist); ~/.ssh/config, the agent,
 * ProxyJump and known_hosts are honoured as ssh itself does, and host-key
 * checking is never turned off.
 */
export class SshHost implements Host {
  readonly name: string;
  private readonly t: SshTarget;
  private readonly share: boolean;
  private dir: string | undefined;
  private session: SshSession | undefined;

  constructor(target: SshTarget, opts: { share?: boolean; controlDir?: string } = {}) {
    this.t = target;
    this.name = target.name;
    this.share = opts.share !== false;
    this.dir = opts.controlDir;
  }

  /** Created on first connection, so that describing a command touches nothing. */
  private get controlDir(): string | null {
    if (!this.share) return null;
    this.dir ??= controlDirectory();
    return this.dir;
  }

  /** ssh options before the destination. */
  sshArgs(): string[] {
    const t = this.t;
    const a: string[] = [];
    if (t.configFile) a.push('-F', t.configFile);
    // StrictHostKeyChecking=yes: a host key that is unknown or does not match known_hosts is refused, whatever an ssh config says
    a.push('-T', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `ConnectTimeout=${t.connectTimeoutS}`, '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3');
    if (this.controlDir) {
      a.push('-o', 'ControlMaster=auto', '-o', `ControlPath=${join(this.controlDir, `${trustKey(t)}-%C`)}`, '-o', `ControlPersist=${t.controlPersistS}`);
    } else {
      a.push('-o', 'ControlMaster=no', '-o', 'ControlPath=none');
    }
    if (t.knownHostsFile) a.push('-o', `UserKnownHostsFile=${t.knownHostsFile}`);
    if (t.port !== undefined) a.push('-p', String(t.port));
    if (t.user !== undefined) a.push('-l', t.user);
    return a;
  }

  private needsSudo(opts?: RunOptions): boolean {
    return opts?.sudo !== false && this.t.user !== undefined && this.t.user !== 'root';
  }

  private withSudo(argv: readonly string[], opts?: RunOptions): string[] {
    return this.needsSudo(opts) ? ['sudo', '-n', '--', ...argv] : [...argv];
  }

  /** The remote command line (as messages show it), with `sudo -n` when the ssh user is not root. */
  remoteLine(argv: readonly string[], opts?: RunOptions): string {
    return quote(this.withSudo(argv, opts));
  }

  describe(argv: readonly string[], opts?: RunOptions): string {
    return this.remoteLine(argv, opts);
  }

  /**
   * The line actually sent: the command under the remote supervisor (see
   * SUPERVISOR, which also sets LC_ALL=C). As root through `sudo -n` when the
   * ssh user is not root: `sudo -n -- bash -c SUPERVISOR …`. Otherwise the
   * login shell that sshd starts for the line runs the supervisor itself when
   * it is bash (root's shell on Debian), which saves starting a second shell
   * on every command; another POSIX shell hands it to bash.
   */
  supervisedLine(argv: readonly string[], opts: RunOptions, timeoutMs: number, input: number | null | 'stream'): string {
    const args = [String(Math.max(1, Math.ceil(timeoutMs / 1000))), input === null ? '-' : String(input), ...argv];
    if (this.needsSudo(opts)) return quote(['sudo', '-n', '--', 'bash', '-c', SUPERVISOR, 'enssib-run', ...args]);
    return `set -- ${quote(args)}; s=${quoteArg(SUPERVISOR)}; [ -n "\${BASH_VERSION-}" ] || exec bash -c "$s" enssib-run "$@"; eval "$s"`;
  }

  async exec(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.execBytes(argv, opts);
    return { ...r, stdout: r.stdout.toString('utf8') };
  }

  /**
   * Streams: stdout flows to `opts.stdout` and/or `opts.stdin` flows to the
   * command, with a byte counter; nothing is held in memory. With streamed
   * input the command's stdin is the data, so the supervisor's watchdog is off:
   * the deadline still holds, and a cancel kills the client (the command then
   * meets the end of its input).
   */
  async stream(argv: readonly string[], opts: StreamOptions): Promise<StreamResult> {
    const { stdout: _s, stdin, onProgress, ...rest } = opts;
    const r = await this.execBytes(argv, rest, {
      ...(opts.stdout ? { stdoutTo: opts.stdout } : {}),
      ...(stdin ? { stdinFrom: stdin } : {}),
      ...(onProgress ? { onBytes: onProgress } : {}),
    });
    return { exitCode: r.exitCode, stderr: r.stderr, bytes: r.bytes, durationMs: r.durationMs };
  }

  /** Like exec, with stdout as bytes (or streamed). */
  private async execBytes(argv: readonly string[], opts: RunOptions, streams: Pick<SpawnOptions, 'stdoutTo' | 'stdinFrom' | 'onBytes'> = {}): Promise<Omit<RunResult, 'stdout'> & { stdout: Buffer; bytes: number }> {
    const line = this.remoteLine(argv, opts);
    const timeoutMs = opts.timeoutMs ?? this.t.commandTimeoutS * 1000;
    const input = opts.input === undefined ? undefined : typeof opts.input === 'string' ? Buffer.from(opts.input) : opts.input;
    const started = Date.now();
    const deadlineMs = Math.max(1, Math.ceil(timeoutMs / 1000)) * 1000;
    const session = input || streams.stdinFrom || streams.stdoutTo ? null : this.idleSession(opts);
    const r = session
      ? await session.run(line, deadlineMs, opts.signal)
      : await spawnSsh([...this.sshArgs(), '--', this.t.target, this.supervisedLine(argv, opts, timeoutMs, streams.stdinFrom ? 'stream' : input ? input.length : null)], {
          deadlineMs,
          ...(input ? { input } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...streams,
        });
    const durationMs = Date.now() - started;
    if (r.spawnError) {
      const msg = r.spawnError.code === 'ENOENT' ? 'the ssh client is not installed (apt-get install openssh-client)' : `ssh failed to start: ${r.spawnError.message}`;
      throw new ConnectionError(this.name, msg);
    }
    if (r.cancelled) throw new InterruptedError(`${this.name}: cancelled: ${line}${r.exitCode === 255 ? '' : ' (stopped on the host)'}`);
    if (r.timedOut) throw new TimeoutError(this.name, line, timeoutMs);
    const stdout = r.stdout;
    if (r.exitCode === 255) throw new ConnectionError(this.name, explainSsh(r.stderr, this.t), [...hostKeyFix(r.stderr, this.t), ...sshDetails(r.stderr)]);
    const lines = r.stderr.split('\n');
    if (r.exitCode !== 0 && lines.some((l) => DEADLINE_LINE.test(l))) throw new TimeoutError(this.name, line, timeoutMs, { stoppedOnHost: true });
    const stderr = lines.filter((l) => !DEADLINE_LINE.test(l)).join('\n');
    if (this.needsSudo(opts) && r.exitCode === 1 && /^sudo: (a password is required|a terminal is required)/m.test(stderr)) {
      throw new OperationError(`${this.name}: sudo asks user "${this.t.user}" for a password; enssib never types one`, [
        `Give ${this.t.user} passwordless sudo (NOPASSWD) on ${this.name}, or set ssh.user: root in the inventory.`,
      ]);
    }
    return { exitCode: r.exitCode, stdout, stderr, durationMs, bytes: r.bytes };
  }

  /**
   * Runs read-only checks in ONE ssh command: one remote sh runs them in
   * sequence and frames each one's exit code, stdout and stderr by byte counts
   * (one round trip instead of one per check).
   */
  async probe(checks: readonly (readonly string[])[], opts: RunOptions = {}): Promise<RunResult[]> {
    if (checks.length === 0) return [];
    if (checks.length === 1) return [await this.exec(checks[0] as readonly string[], opts)];
    const r = await this.execBytes(['sh', '-c', probeScript(checks), 'enssib-probes'], opts);
    const results = r.exitCode === 0 ? parseFrames(r.stdout, checks.length) : null;
    if (!results) {
      throw new OperationError(`${this.name}: the batch of read-only checks failed (exit code ${r.exitCode})`, [`checks: ${checks.map((c) => quote(c)).join('; ')}`, ...r.stderr.trim().split('\n').slice(-4)]);
    }
    return results.map((x) => ({ ...x, durationMs: Math.round(r.durationMs / checks.length) }));
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.exec(argv, opts);
    if (r.exitCode !== 0) throw new CommandError(this.name, this.remoteLine(argv, opts), r.exitCode, r.stderr);
    return r;
  }

  async upload(file: FileSpec, opts: { timeoutMs?: number } = {}): Promise<UploadOutcome> {
    const mode = normalizeMode(file.mode ?? '0644');
    const owner = file.owner ?? 'root:root';
    const content = typeof file.content === 'string' ? Buffer.from(file.content) : file.content;
    const want = createHash('sha256').update(content).digest('hex');
    const probe = await this.run(['sh', '-c', PROBE_SCRIPT, 'sh', file.path], opts);
    const [hash, statLine] = probe.stdout.split('\n');
    if (hash?.split(' ')[0] === want && statLine === `${mode.replace(/^0+(?=\d)/, '')} ${owner}`) return 'unchanged';
    await this.run(['sh', '-c', WRITE_SCRIPT, 'sh', file.path, mode, owner], { ...opts, input: content });
    return 'written';
  }

  /**
   * The host's session (see SshSession) when it can run this command now: a
   * shared connection, a command as the ssh user itself (no sudo), and no other
   * command of this host in flight (that one then takes its own ssh client).
   * Opened on first use; a session that ended is replaced.
   */
  private idleSession(opts: RunOptions): SshSession | null {
    if (!this.share || this.needsSudo(opts)) return null;
    if (this.session?.ended) this.session = undefined;
    this.session ??= new SshSession([...this.sshArgs(), '--', this.t.target]);
    return this.session.busy ? null : this.session;
  }

  async close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.close();
    if (!this.share || this.dir === undefined) return;
    await spawnSsh([...this.sshArgs(), '-O', 'exit', '--', this.t.target], { deadlineMs: 3000, noStdin: true });
  }
}

interface SpawnResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
  cancelled: boolean;
  /** Bytes of stdout received. */
  bytes: number;
  spawnError?: NodeJS.ErrnoException;
}

interface SpawnOptions {
  /**
   * The command's deadline on the host, counted from its start there
   * (STARTED_LINE), else from the spawn. The host stops the command then and
   * says so; a host that has not said so ANSWER_GRACE_MS later (frozen, its
   * packets dropped) is reported at once as not answering, as is one that
   * said so but did not end the command by the SIGKILL.
   */
  deadlineMs: number;
  input?: Buffer;
  signal?: AbortSignal;
  /** No standard input at all (the control commands such as `-O exit`). */
  noStdin?: boolean;
  /** Stdout goes there as it comes instead of being kept. */
  stdoutTo?: NodeJS.WritableStream;
  /** Stdin comes from there (its end ends the command's input). */
  stdinFrom?: NodeJS.ReadableStream;
  onBytes?: (bytes: number) => void;
}

/** Seconds between the deadline's SIGTERM and SIGKILL on the host. */
const KILL_AFTER_S = 5;
/**
 * How long past the host's deadline the client waits for the host to say it
 * stopped the command (the deadline line below) before it reports that the
 * host does not answer.
 */
const ANSWER_GRACE_MS = 2000;
/** After closing a command's input to stop it, how long to wait for the host to confirm before killing the client. */
const STOP_WAIT_MS = 10_000;
/** What the supervisor prints when the deadline passed. */
const DEADLINE_LINE = /^enssib-run: deadline passed: /m;
/** The first stderr line of a supervised command: the host's deadline clock starts now. */
const STARTED_LINE = 'enssib-run: started';
const STARTED = Buffer.from(`${STARTED_LINE}\n`);
const NL_STARTED = Buffer.from(`\n${STARTED_LINE}\n`);

/** Where STARTED_LINE is in stderr (after what sudo or the login shell may have printed first), or -1. */
function startedIndex(stderr: Buffer): number {
  if (stderr.subarray(0, STARTED.length).equals(STARTED)) return 0;
  const i = stderr.indexOf(NL_STARTED);
  return i < 0 ? -1 : i + 1;
}

function withoutStarted(stderr: Buffer, at: number | undefined): Buffer {
  return at === undefined ? stderr : Buffer.concat([stderr.subarray(0, at), stderr.subarray(at + STARTED.length)]);
}

/**
 * The remote supervisor: `enssib-run DEADLINE_S INPUT_BYTES COMMAND...`, a
 * bash script (bash is on every Debian host: it is Essential). It runs the
 * command under `LC_ALL=C` (set here, after sudo, which resets the
 * environment, so that the host's locale never changes the output enssib
 * parses), in a process group of its own (`set -m`). The first INPUT_BYTES
 * bytes of stdin are the command's input ("-": none; "stream": all of stdin,
 * and no watchdog); the rest of stdin is a watchdog: enssib keeps it open
 * while it waits, so it ends only when the ssh client goes away (killed,
 * network lost) or enssib closes it to cancel. Then, or at the deadline, the
 * command's whole process group is sent SIGTERM, and SIGKILL KILL_AFTER_S
 * later; at the deadline the host says so first (DEADLINE_LINE). The
 * supervisor exits once the command is gone, with its exit code (143 or 137
 * when it was stopped), so a cancelled or timed-out command is known to be
 * stopped; it says when the deadline clock starts (STARTED_LINE on stderr).
 *
 * It is on the path of every remote command, so it is kept light: the shell
 * that runs it (the login shell itself when that is bash, see
 * `supervisedLine`), the command, and one fork of that shell that is both the
 * watchdog and the deadline (`read -t` on stdin: no other program, no
 * `timeout`); the input alone costs a temporary file. The shell's own stderr
 * is /dev/null (bash would report a command killed by a signal there); the
 * command and the watchdog write to the real one (fd 5).
 */
export const SUPERVISOR = [
  'set +eux',
  't=$1 n=$2; shift 2',
  'export LC_ALL=C',
  'exec 3<&0 4</dev/null 5>&2 2>/dev/null',
  'if [ "$n" = stream ]; then exec 4<&3',
  'elif [ "$n" != - ]; then f=$(mktemp) || exit 125; head -c "$n" >"$f"; exec 4<"$f"; rm -f "$f"; fi',
  `echo '${STARTED_LINE}' >&5`,
  'set -m',
  '"$@" <&4 2>&5 3<&- 4<&- 5>&- & c=$!',
  '{',
  '  if [ "$n" = stream ]; then sleep "$t"; e=142',
  '  else r=$t; while :; do read -r -t "$r" x; e=$?; [ "$e" = 0 ] || break; r=$((t - SECONDS)); [ "$r" -gt 0 ] || { e=142; break; }; done; fi',
  `  [ "$e" -gt 128 ] && echo "enssib-run: deadline passed: sending signal TERM to the process group of $1" >&5`,
  `  kill -s TERM -- "-$c"; sleep ${KILL_AFTER_S}; kill -s KILL -- "-$c"`,
  '} <&3 >/dev/null 3<&- 4<&- & w=$!',
  'set +m',
  'exec 3<&- 4<&- 5>&-',
  'wait "$c"; rc=$?',
  // SIGKILL: the watchdog may be forking `sleep`, and a bash child that is not yet `sleep` would catch a SIGTERM and go on.
  'kill -s KILL -- "-$w"',
  'exit "$rc"',
].join('\n');

/**
 * Runs the ssh client. node's spawn rather than execa here: this is the hot path
 * of every fan-out, and execa's extra work per process is measurable on 20 hosts
 * (test/bench/fanout.mjs). The client runs in its own process group (detached),
 * so that the terminal's Ctrl-C reaches enssib only: enssib decides when a
 * command stops. Its stdin stays open until the command ends; closing it is how
 * a command is cancelled (the supervisor on the host stops it and exits).
 *
 * The host stops a command at its deadline and says so on stderr. A host that
 * has not said so ANSWER_GRACE_MS after the deadline (counted from the
 * command's start on the host) does not answer: the client is killed and its
 * pipes closed at once — a shared connection's master holds the command's
 * output pipes, so without that a host that froze would keep us waiting until
 * ssh itself gives up on it (ServerAliveInterval × ServerAliveCountMax).
 */
function spawnSsh(args: string[], o: SpawnOptions): Promise<SpawnResult> {
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: [o.noStdin ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let cancelled = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let bytes = 0;
    let errBytes = 0;
    const kill = () => {
      child.kill('SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
    };
    /** Closes the command's stdin (the supervisor stops it), then kills the client if the host does not confirm. */
    const stop = (waitMs: number) => {
      if (o.stdinFrom) {
        o.stdinFrom.unpipe?.(child.stdin ?? undefined);
        kill();
      }
      child.stdin?.end();
      killTimer ??= setTimeout(kill, waitMs);
    };

    // The deadline: the host stops the command (SIGTERM, SIGKILL KILL_AFTER_S later) and says so, or it does not answer.
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number, then: () => void) => {
      clearTimeout(timer);
      timer = setTimeout(then, ms);
    };
    const giveUp = () => {
      timedOut = true;
      o.stdinFrom?.unpipe?.(child.stdin ?? undefined);
      kill();
    };
    const atDeadline = () => {
      if (!DEADLINE_LINE.test(Buffer.concat(err).toString('utf8'))) giveUp();
      else arm(KILL_AFTER_S * 1000 + ANSWER_GRACE_MS, giveUp);
    };
    arm(o.deadlineMs + ANSWER_GRACE_MS, atDeadline);
    /** Where STARTED_LINE is in stderr; its arrival restarts the clock. */
    let startedAt: number | undefined;
    const watchStart = () => {
      const at = startedIndex(Buffer.concat(err));
      if (at >= 0) {
        startedAt = at;
        arm(o.deadlineMs + ANSWER_GRACE_MS, atDeadline);
      }
    };

    child.stdout?.on('data', (b: Buffer) => {
      bytes += b.length;
      if (!o.stdoutTo) out.push(b);
      o.onBytes?.(bytes);
    });
    if (o.stdoutTo) child.stdout?.pipe(o.stdoutTo);
    child.stderr?.on('data', (b: Buffer) => {
      err.push(b);
      errBytes += b.length;
      if (startedAt === undefined && errBytes < 65536) watchStart();
    });
    const stopWaiting = o.signal
      ? whenAborted(o.signal, () => {
          cancelled = true;
          stop(STOP_WAIT_MS);
        })
      : undefined;
    const finish = (code: number | null) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      stopWaiting?.();
      child.stdin?.destroy();
      resolve({
        exitCode: code ?? 255,
        stdout: Buffer.concat(out),
        stderr: withoutStarted(Buffer.concat(err), startedAt).toString('utf8'),
        timedOut,
        cancelled,
        bytes,
        ...(spawnError ? { spawnError } : {}),
      });
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
      if (child.pid === undefined) finish(null);
    });
    child.on('close', finish);
    if (child.stdin) {
      child.stdin.on('error', () => {
        /* the remote side closed early; its exit code tells the story */
      });
      if (o.input && !cancelled) child.stdin.write(o.input);
      if (o.stdinFrom) o.stdinFrom.pipe(child.stdin);
    }
  });
}

/**
 * The remote side of a host's session: `enssib-session`, a bash loop that runs
 * one command at a time as the supervisor does (see SUPERVISOR): LC_ALL=C, its
 * own process group, stdin /dev/null, a watchdog that is also the deadline.
 * A command comes as `enssib-cmd DEADLINE_S BYTES MARK` and BYTES bytes of a
 * quoted command line. MARK is a random token the client chose for this
 * command: its result comes back as `MARK S`, its stdout, `\nMARK E\n`, its
 * stderr, `\nMARK EXIT_CODE\n` (framed by MARK rather than by sizes: sizes
 * cost a program per command, and every exec is a measurable cost on a host
 * of a 20-host fan-out; one `cat` sends both outputs, none when both are
 * empty). While a command runs, the watchdog reads the session's stdin: a
 * `cancel` line, or its end (the ssh client went away: killed, network lost),
 * stops the command's process group (SIGTERM, SIGKILL KILL_AFTER_S later); at
 * the deadline it does the same after writing DEADLINE_LINE to the command's
 * stderr and `MARK D` to the session's stdout. `MARK R` says the command
 * started: the client's deadline clock starts again then (the session may
 * have taken a while to open). At the end of its stdin the
 * loop exits. What a login script may print before the loop starts is
 * skipped by the client (it is not MARK).
 */
export const SESSION = [
  'set +eux',
  'export LC_ALL=C',
  'exec 2>/dev/null',
  'd=$(mktemp -d) || exit 125',
  `trap 'rm -rf "$d"' EXIT`,
  'while IFS= read -r h; do',
  `  case $h in 'enssib-cmd '*) ;; *) continue ;; esac`,
  '  set -- $h; t=$2 m=$4',
  '  IFS= read -r -N "$3" l || break',
  '  eval "set -- $l"',
  '  : >"$d/e"',
  '  set -m',
  '  "$@" </dev/null >"$d/o" 2>>"$d/e" & c=$!',
  `  printf '%s R\\n' "$m"`,
  '  {',
  '    SECONDS=0; r=$t',
  '    while :; do read -r -t "$r" x; e=$?; [ "$e" = 0 ] || break; [ "$x" = cancel ] && break; r=$((t - SECONDS)); [ "$r" -gt 0 ] || { e=142; break; }; done',
  `    [ "$e" -gt 128 ] && { echo "enssib-run: deadline passed: sending signal TERM to the process group of $1" >>"$d/e"; echo "$m D"; }`,
  `    kill -s TERM -- "-$c"; sleep ${KILL_AFTER_S}; kill -s KILL -- "-$c"`,
  '  } & w=$!',
  '  set +m',
  '  wait "$c"; rc=$?',
  '  kill -s KILL -- "-$w"; wait "$w"',
  '  if [ -s "$d/o" ] || [ -s "$d/e" ]; then',
  `    printf '\\n%s E\\n' "$m" >"$d/m"; printf '%s S\\n' "$m"; cat "$d/o" "$d/m" "$d/e"; printf '\\n%s %s\\n' "$m" "$rc"`,
  `  else printf '%s S\\n\\n%s E\\n\\n%s %s\\n' "$m" "$m" "$m" "$rc"; fi`,
  'done',
].join('\n');

interface Pending {
  /** This command's MARK (see SESSION). */
  mark: string;
  resolve: (r: SpawnResult) => void;
  timedOut: boolean;
  cancelled: boolean;
  timer?: NodeJS.Timeout;
  stopTimer?: NodeJS.Timeout;
  stopWaiting?: () => void;
  /** The host wrote that the deadline passed. */
  deadlinePassed: boolean;
  /** The host wrote that the command started. */
  started: boolean;
  /** (Re)starts the deadline clock. */
  arm?: () => void;
}

/**
 * One long-lived ssh client per host (a mux client of the shared connection),
 * running SESSION: the commands of a run go to it one after the other, so a
 * command costs no local process and no new channel — on 20 hosts, starting
 * 20 ssh clients per step is what dominated a fan-out on a small machine
 * (test/bench/fanout.mjs). The client runs in its own process group
 * (detached), as every ssh client does: only enssib decides when it stops.
 * It keeps enssib's event loop alive only while a command is in flight; when
 * enssib exits, its end of the pipe closes and the loop on the host ends.
 *
 * The deadline, the cancel and a host that does not answer are handled as
 * spawnSsh does, except that giving up on a host ends its whole session (the
 * next command opens a new one).
 */
export class SshSession {
  private readonly child: ChildProcess;
  private out = Buffer.alloc(0);
  private err = '';
  private pending: Pending | undefined;
  private spawnError: NodeJS.ErrnoException | undefined;
  ended = false;

  constructor(args: string[]) {
    this.child = spawn('ssh', [...args, `exec bash -c ${quoteArg(SESSION)} enssib-session`], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, LC_ALL: 'C' } });
    this.child.stdout?.on('data', (b: Buffer) => {
      this.out = Buffer.concat([this.out, b]);
      this.parse();
    });
    this.child.stderr?.on('data', (b: Buffer) => {
      this.err = (this.err + b.toString('utf8')).slice(-65536);
    });
    this.child.stdin?.on('error', () => {
      /* the session ended; 'close' tells the pending command */
    });
    this.child.on('error', (e: NodeJS.ErrnoException) => {
      this.spawnError = e;
      if (this.child.pid === undefined) this.end();
    });
    this.child.on('close', () => this.end());
    // The session never keeps enssib running by itself: a command in flight does (its deadline timer).
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr] as unknown as ({ unref?: () => void } | null)[]) s?.unref?.();
  }

  get busy(): boolean {
    return this.pending !== undefined || this.ended;
  }

  /** Runs a quoted command line; the result as spawnSsh gives it. */
  run(line: string, deadlineMs: number, signal?: AbortSignal): Promise<SpawnResult> {
    return new Promise((resolve) => {
      const p: Pending = { mark: `enssib-${randomBytes(16).toString('hex')}`, resolve, timedOut: false, cancelled: false, deadlinePassed: false, started: false };
      this.pending = p;
      const body = Buffer.from(line);
      this.child.stdin?.write(Buffer.concat([Buffer.from(`enssib-cmd ${deadlineMs / 1000} ${body.length} ${p.mark}\n`), body]));
      const giveUp = () => {
        p.timedOut = true;
        this.kill();
      };
      p.arm = () => {
        clearTimeout(p.timer);
        p.timer = setTimeout(() => {
          if (p.deadlinePassed) p.timer = setTimeout(giveUp, KILL_AFTER_S * 1000 + ANSWER_GRACE_MS);
          else giveUp();
        }, deadlineMs + ANSWER_GRACE_MS);
      };
      p.arm();
      if (signal) {
        p.stopWaiting = whenAborted(signal, () => {
          p.cancelled = true;
          this.child.stdin?.write('cancel\n');
          p.stopTimer ??= setTimeout(() => this.kill(), STOP_WAIT_MS);
        });
      }
    });
  }

  /** Ends the session: the loop on the host meets the end of its input and exits. */
  async close(): Promise<void> {
    if (this.ended) return;
    const closed = new Promise((r) => this.child.once('close', r));
    this.child.stdin?.end();
    const timer = setTimeout(() => this.kill(), 3000);
    await closed;
    clearTimeout(timer);
  }

  /** Reads the pending command's result once it is all there (see SESSION). */
  private parse(): void {
    const p = this.pending;
    if (!p) return;
    const start = this.out.indexOf(`${p.mark} S\n`);
    if (!p.started && this.out.indexOf(`${p.mark} R\n`) >= 0) {
      p.started = true;
      p.arm?.();
    }
    if (this.out.indexOf(`${p.mark} D\n`) >= 0) p.deadlinePassed = true;
    if (start < 0) return;
    const from = start + p.mark.length + 3;
    const e = this.out.indexOf(`\n${p.mark} E\n`, from);
    if (e < 0) return;
    const errFrom = e + p.mark.length + 4;
    const z = this.out.indexOf(`\n${p.mark} `, errFrom);
    const end = z < 0 ? -1 : this.out.indexOf(0x0a, z + p.mark.length + 2);
    if (end < 0) return;
    const rc = Number(this.out.subarray(z + p.mark.length + 2, end).toString('latin1'));
    const stdout = Buffer.from(this.out.subarray(from, e));
    const stderr = this.out.subarray(errFrom, z).toString('utf8');
    this.out = this.out.subarray(end + 1);
    this.settle({ exitCode: rc, stdout, stderr, bytes: stdout.length });
  }

  private settle(r: Pick<SpawnResult, 'exitCode' | 'stdout' | 'stderr' | 'bytes' | 'spawnError'>): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    clearTimeout(p.stopTimer);
    p.stopWaiting?.();
    p.resolve({ ...r, timedOut: p.timedOut, cancelled: p.cancelled });
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    // The session is gone with a command in flight: as a connection lost (the loop on the host stopped it, or will at once).
    this.settle({ exitCode: 255, stdout: Buffer.alloc(0), stderr: this.err, bytes: 0, ...(this.spawnError ? { spawnError: this.spawnError } : {}) });
  }

  private kill(): void {
    this.child.kill('SIGKILL');
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.end();
  }
}

const PROBE_FRAME = 'enssib-probe';

/** The sh script of a probe batch: each check in turn, a header line with its exit code and output sizes, then its stdout and stderr. */
export function probeScript(checks: readonly (readonly string[])[]): string {
  return [
    'd=$(mktemp -d) || exit 125',
    `trap 'rm -rf "$d"' EXIT`,
    ...checks.map((c) => `${quote(c)} >"$d/o" 2>"$d/e" </dev/null; rc=$?; printf '${PROBE_FRAME} %s %s %s\\n' "$rc" $(wc -c <"$d/o") $(wc -c <"$d/e"); cat "$d/o" "$d/e"`),
  ].join('\n');
}

/** Splits a probe batch's output into each check's result; null when it is not what the batch prints. */
export function parseFrames(out: Buffer, n: number): Omit<RunResult, 'durationMs'>[] | null {
  const results: Omit<RunResult, 'durationMs'>[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const nl = out.indexOf(0x0a, at);
    if (nl < 0) return null;
    const m = new RegExp(`^${PROBE_FRAME} (\\d+) (\\d+) (\\d+)$`).exec(out.subarray(at, nl).toString('latin1'));
    if (!m) return null;
    const [rc, o, e] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const start = nl + 1;
    if (start + o + e > out.length) return null;
    results.push({ exitCode: rc, stdout: out.subarray(start, start + o).toString('utf8'), stderr: out.subarray(start + o, start + o + e).toString('utf8') });
    at = start + o + e;
  }
  return at === out.length ? results : null;
}

const PROBE_SCRIPT = 'if [ -f "$1" ]; then sha256sum < "$1"; stat -c "%a %U:%G" "$1"; fi';
const WRITE_SCRIPT = [
  'set -e',
  'd=$(dirname "$1")',
  'mkdir -p "$d"',
  't=$(mktemp "$d/.enssib.XXXXXX")',
  'trap \'rm -f "$t"\' EXIT',
  'cat > "$t"',
  'chmod "$2" "$t"',
  'chown "$3" "$t"',
  'mv -f "$t" "$1"',
  'trap - EXIT',
].join('\n');

function normalizeMode(m: string): string {
  if (!/^0?[0-7]{3,4}$/.test(m)) throw new OperationError(`file mode ${JSON.stringify(m)} is not an octal mode such as 0644`);
  return m.length === 3 ? `0${m}` : m;
}

/** One control-socket folder per user, private, short enough for the socket path limit. */
/**
 * What the host key was checked against (ssh config and known_hosts file),
 * hashed into the control socket's name: a master connection kept from a run
 * under other trust settings is never reused, so a host key that no longer
 * matches the known_hosts of this run is refused even while an older
 * connection to that host persists (ssh's %C names only the host, port and
 * user; a client joining a master checks no key).
 */
function trustKey(t: Pick<SshTarget, 'configFile' | 'knownHostsFile'>): string {
  return createHash('sha256')
    .update(`${t.configFile ?? ''}\0${t.knownHostsFile ?? ''}`)
    .digest('hex')
    .slice(0, 8);
}

export function controlDirectory(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const dir = join(tmpdir(), `enssib-ssh-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new OperationError(`${dir} is not private to this user; remove it and try again`);
  }
  return dir;
}

function sshDetails(stderr: string): string[] {
  return stderr
    .replace(/\r/g, '')
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^Warning: Permanently added/.test(l))
    .slice(-4)
    .map((l) => (l.startsWith('ssh: ') ? l : `ssh: ${l}`));
}

const HOST_KEY_CHANGED = /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/;
const HOST_KEY_UNKNOWN = /Host key verification failed|No \S+ host key is known/;

/** What to do about a refused host key: the person checks the fingerprint; enssib changes no known_hosts. */
function hostKeyFix(stderr: string, t: SshTarget): string[] {
  const keyscan = `ssh-keyscan${t.port ? ` -p ${t.port}` : ''} ${t.target}`;
  if (HOST_KEY_CHANGED.test(stderr)) {
    return [`If ${t.name} was reinstalled, compare the new key's fingerprint (${keyscan} | ssh-keygen -lf -) with the one on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), and only then replace its line in known_hosts. If it was not, something else answers at its address.`];
  }
  if (HOST_KEY_UNKNOWN.test(stderr)) return [`Compare the fingerprint (${keyscan} | ssh-keygen -lf -) with the one on ${t.name}'s console, then add the key to known_hosts (${keyscan} >> known_hosts).`];
  return [];
}

function explainSsh(stderr: string, t: SshTarget): string {
  const where = `${t.target}${t.port ? `:${t.port}` : ''}`;
  if (HOST_KEY_CHANGED.test(stderr)) {
    const at = /Offending \S+ key in (.+):(\d+)\s*$/m.exec(stderr);
    return `host key of ${where} has changed: it does not match known_hosts${at ? ` (${at[1]}, line ${at[2]})` : ''}; refused (enssib never overrides host-key checking)`;
  }
  if (HOST_KEY_UNKNOWN.test(stderr)) return `host key of ${where} is unknown: it is not in known_hosts; refused (enssib never disables host-key checking)`;
  if (/Permission denied/.test(stderr)) return `ssh login refused by ${where} (key not accepted)`;
  if (/Connection refused/.test(stderr)) return `connection refused by ${where} (is sshd running?)`;
  if (/Could not resolve hostname/.test(stderr)) return `cannot resolve ${t.target}`;
  if (/timed out|Connection timed out|Operation timed out/i.test(stderr)) return `connection to ${where} timed out`;
  if (/No route to host|Network is unreachable/.test(stderr)) return `no route to ${where}`;
  if (/closed by remote host|Connection reset|Broken pipe|kex_exchange_identification/.test(stderr)) return `connection to ${where} was closed`;
  return `cannot reach ${where} over ssh`;
}
