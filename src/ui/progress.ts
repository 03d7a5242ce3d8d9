import { DefaultRenderer, Listr, ListrDefaultRendererLogLevels, ListrLogger, ProcessOutput, type ListrTask } from 'listr2';
import type { RunEvent, RunObserver } from '../engine/events.js';
import type { HostOutcome, ItemResult, PhaseOutcome } from '../engine/types.js';
import { formatBytes } from '../validate.js';

/** `default`: listr2 on a terminal; `simple`: plain lines (no TTY, CI, a log file); `silent`: nothing (JSON output, client dry run). */
export type ProgressRenderer = 'default' | 'simple' | 'silent';

/** How the progress of a plan is shown on stderr (stdout carries only results). */
export function progressObserver(renderer: ProgressRenderer, stream: NodeJS.WritableStream = process.stderr): RunObserver | undefined {
  if (renderer === 'silent') return undefined;
  return renderer === 'default' ? listrObserver() : plainObserver(stream);
}

type ProgressEvent = Extract<RunEvent, { type: 'progress' }>;

/** "1m 05s", "2h 03m": a duration for a person. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Bytes, rate and ETA of a long command, from its progress events: the rate
 * is the average since its first report (`now` in ms, for tests).
 */
export function progressMeter(now: () => number = Date.now): (e: ProgressEvent) => string {
  const first = new Map<string, { t: number; done: number }>();
  return (e) => {
    const key = `${e.item ?? ''}\u0000${e.phase}\u0000${e.host}`;
    const t = now();
    const start = first.get(key) ?? { t, done: e.done };
    first.set(key, start);
    const secs = (t - start.t) / 1000;
    const rate = secs > 0 ? (e.done - start.done) / secs : 0;
    const of = e.total > 0 ? ` of ${formatBytes(e.total)} (${Math.min(100, Math.floor((e.done * 100) / e.total))}%)` : '';
    const eta = rate > 0 && e.total > e.done ? `, ETA ${formatDuration(((e.total - e.done) / rate) * 1000)}` : '';
    return `${formatBytes(e.done)}${of}${rate > 0 ? `, ${formatBytes(Math.round(rate))}/s` : ''}${eta}`;
  };
}

const WORD: Record<HostOutcome['status'], string> = {
  done: 'done',
  unchanged: 'unchanged',
  failed: 'FAILED',
  skipped: 'skipped',
  'would-change': 'would change',
  planned: 'planned',
  'after-apply': 'known after apply',
};

/** The error message without the host name it often starts with (the line already names the host). */
function reason(o: HostOutcome): string {
  const m = (o.error?.message ?? '').replace(/\r/g, '');
  return m.startsWith(`${o.host}: `) ? m.slice(o.host.length + 2) : m;
}

export function hostLine(o: HostOutcome): string {
  const mark = o.status === 'failed' ? '✖' : o.status === 'done' || o.status === 'unchanged' ? '✔' : '·';
  const secs = o.durationMs > 0 ? ` (${(o.durationMs / 1000).toFixed(1)} s)` : '';
  const why = o.status === 'failed' && o.error ? ` — ${reason(o)}` : o.note ? ` — ${o.note}` : '';
  return `${mark} ${o.host}: ${WORD[o.status]}${secs}${why}`;
}

/** The phase's true status: ✔ only when no host failed, and how many did. */
export function phaseLine(p: PhaseOutcome): string {
  const title = p.item !== undefined ? `[${p.item}] ${p.title}` : p.title;
  const failed = p.hosts.filter((h) => h.status === 'failed').length;
  if (failed > 0) return `✖ ${title} — ${failed} of ${p.hosts.length} host${p.hosts.length > 1 ? 's' : ''} failed`;
  if (p.hosts.every((h) => h.status === 'skipped')) return `· ${title} — skipped`;
  return `✔ ${title}`;
}

/** One item of per-item work as it ends. */
export function itemLine(o: ItemResult): string {
  const mark = o.status === 'failed' || o.status === 'interrupted' ? '✖' : o.status === 'done' || o.status === 'unchanged' ? '✔' : '·';
  const secs = o.durationMs > 0 ? ` (${(o.durationMs / 1000).toFixed(1)} s)` : '';
  const word = o.status === 'failed' || o.status === 'interrupted' ? o.status.toUpperCase() : o.status === 'would-change' ? 'would change' : o.status;
  const why = o.error ? ` — ${o.stoppedAt ? `${o.stoppedAt}: ` : ''}${o.error.message.replace(/\r/g, '')}` : o.stoppedAt ? ` — during ${o.stoppedAt}` : '';
  return `${mark} ${o.item}: ${word}${secs}${why}`;
}

/** The end of per-item work: ✔ only when no item failed. */
export function itemsLine(title: string, outcomes: readonly ItemResult[]): string {
  const bad = outcomes.filter((o) => o.status === 'failed' || o.status === 'interrupted').length;
  return bad > 0 ? `✖ ${title} — ${bad} of ${outcomes.length} item${outcomes.length > 1 ? 's' : ''} failed` : `✔ ${title}`;
}

function undoLine(e: Extract<RunEvent, { type: 'undo-end' }>): string {
  const u = e.outcome;
  const phase = u.item !== undefined ? `[${u.item}] ${u.phase}` : u.phase;
  return u.ok ? `  ↩ ${u.host}: undone — ${phase}` : `  ✖ ${u.host}: UNDO FAILED — ${phase}: ${(u.error?.message ?? '').replace(/\r/g, '')}`;
}

function undoStartLine(e: Extract<RunEvent, { type: 'undo-start' }>): string {
  const steps = `${e.steps} step${e.steps > 1 ? 's' : ''}`;
  return e.item !== undefined ? `↩ [${e.item}] undoing what this item did (${steps})` : `↩ undoing what this run did (${steps})`;
}

/**
 * Plain lines, one per host as it ends and one per phase with its true status;
 * an item's lines carry its name. A long command's progress is a line every
 * `progressEveryMs` (30 s by default: a log of a night's backup stays short).
 */
export function plainObserver(stream: NodeJS.WritableStream, o: { progressEveryMs?: number; now?: () => number } = {}): RunObserver {
  const write = (l: string) => stream.write(`${l}\n`);
  const now = o.now ?? Date.now;
  const meter = progressMeter(now);
  const every = o.progressEveryMs ?? 30_000;
  const last = new Map<string, number>();
  let section = '';
  return {
    event(e) {
      switch (e.type) {
        case 'progress': {
          const line = meter(e);
          const key = `${e.item ?? ''}\u0000${e.phase}\u0000${e.host}`;
          const t = now();
          const before = last.get(key);
          if (before !== undefined && t - before < every) break;
          last.set(key, t);
          write(`  ${e.item !== undefined ? `[${e.item}] ` : ''}${e.host}: ${e.phase}: ${line}`);
          break;
        }
        case 'phase-start':
          write(`→ ${e.item !== undefined ? `[${e.item}] ` : ''}${e.title}`);
          break;
        case 'host-end':
          write(`  ${e.item !== undefined ? `[${e.item}] ` : ''}${hostLine(e.outcome)}`);
          break;
        case 'phase-end':
          write(phaseLine(e.outcome));
          break;
        case 'undo-start':
          write(undoStartLine(e));
          break;
        case 'undo-end':
          write(undoLine(e));
          break;
        case 'items-start':
          section = e.title;
          write(`→ ${e.title} (${e.items.length} item${e.items.length > 1 ? 's' : ''})`);
          break;
        case 'item-end':
          write(itemLine(e.outcome));
          break;
        case 'items-end':
          write(itemsLine(section, e.outcomes));
          break;
        case 'host-start':
        case 'item-start':
          break;
      }
    },
  };
}

/**
 * listr2's renderer, on the terminal that stderr is: listr2 would fall back to
 * its line renderer when stdout is not a terminal (`enssib … > file`), but the
 * progress goes to stderr, which is one (the caller checked).
 */
class TerminalRenderer extends DefaultRenderer {
  static override nonTTY = true;
}

/**
 * listr2 on a terminal: one list per phase, one line per host, resolved by the
 * runner's events; per-item work is one list with a line per item that shows
 * the phase it is in. A phase where a host failed, or a section where an item
 * failed, is marked failed (✖), not done.
 */
export function listrObserver(stream: NodeJS.WriteStream = process.stderr): RunObserver {
  const logger = () => new ListrLogger({ processOutput: new ProcessOutput(stream, stream) });
  const run = (title: string, task: ListrTask['task']) =>
    new Listr([{ title, task }], {
      renderer: TerminalRenderer,
      exitOnError: false,
      collectErrors: false,
      registerSignalListeners: false,
      rendererOptions: { logger: logger(), collapseErrors: false, showErrorMessage: false, icon: { [ListrDefaultRendererLogLevels.FAILED_WITH_FAILED_SUBTASKS]: '✖' } },
    })
      .run()
      .catch(() => undefined);
  let running: Promise<unknown> = Promise.resolve();
  /** Host (or item) lines waiting for their end, by name. */
  let waiting = new Map<string, (o: HostOutcome) => void>();
  let phaseEnded: (p: PhaseOutcome) => void = () => undefined;
  const items = new Map<string, { resolve: (o: ItemResult) => void; progress: (line: string) => void }>();
  let itemsEnded: (o: ItemResult[]) => void = () => undefined;
  const meter = progressMeter();
  /** The phase each item is in, for its progress line. */
  const inPhase = new Map<string, string>();

  /** The subtasks of a list, and a last one without a title that fails the parent when `failed` says so. */
  const withVerdict = <T>(subtasks: ListrTask[], ended: Promise<T>, failed: (t: T) => string | null): ListrTask[] => [
    ...subtasks,
    {
      task: async () => {
        const why = failed(await ended);
        if (why !== null) throw new Error(why);
      },
    },
  ];

  return {
    event(e) {
      switch (e.type) {
        case 'phase-start': {
          if (e.item !== undefined) {
            inPhase.set(e.item, e.title);
            items.get(e.item)?.progress(e.title);
            break;
          }
          const ends = new Map<string, Promise<HostOutcome>>();
          waiting = new Map();
          for (const h of e.hosts) ends.set(h, new Promise<HostOutcome>((resolve) => waiting.set(h, resolve)));
          const ended = new Promise<PhaseOutcome>((resolve) => (phaseEnded = resolve));
          running = run(e.title, (_ctx, task) => {
            void ended.then((p) => (task.title = phaseLine(p).slice(2)));
            const hosts: ListrTask[] = e.hosts.map((h) => ({
              title: h,
              exitOnError: false,
              task: async (_c, t) => {
                const o = await (ends.get(h) as Promise<HostOutcome>);
                t.title = hostLine(o).slice(2);
                if (o.status === 'failed') throw new Error(reason(o));
                if (o.status === 'skipped' || o.status === 'after-apply') t.skip(t.title);
              },
            }));
            // listr2 marks a parent done even when a host failed: the last subtask fails it then.
            return task.newListr(
              withVerdict(hosts, ended, (p) => (p.hosts.some((h) => h.status === 'failed') ? phaseLine(p) : null)),
              { concurrent: true, exitOnError: true },
            );
          });
          break;
        }
        case 'host-end':
          if (e.item === undefined) waiting.get(e.outcome.host)?.(e.outcome);
          break;
        case 'phase-end':
          if (e.outcome.item === undefined) phaseEnded(e.outcome);
          break;
        case 'undo-start':
          if (e.item !== undefined) items.get(e.item)?.progress(`undoing (${e.steps} step${e.steps > 1 ? 's' : ''})`);
          else stream.write(`${undoStartLine(e)}\n`);
          break;
        case 'undo-end':
          if (e.outcome.item === undefined) stream.write(`${undoLine(e)}\n`);
          break;
        case 'items-start': {
          items.clear();
          const ends = new Map<string, Promise<ItemResult>>();
          const titles = new Map<string, (line: string) => void>();
          const latest = new Map<string, string>();
          for (const i of e.items) {
            const progress = (l: string) => {
              latest.set(i, l);
              titles.get(i)?.(l);
            };
            ends.set(i, new Promise<ItemResult>((resolve) => items.set(i, { resolve, progress })));
          }
          const ended = new Promise<ItemResult[]>((resolve) => (itemsEnded = resolve));
          running = run(e.title, (_ctx, task) => {
            void ended.then((o) => (task.title = itemsLine(e.title, o).slice(2)));
            const lines: ListrTask[] = e.items.map((i) => ({
              title: i,
              exitOnError: false,
              task: async (_c, t) => {
                titles.set(i, (l) => (t.title = `${i}: ${l}…`));
                const now = latest.get(i);
                if (now !== undefined) t.title = `${i}: ${now}…`;
                const o = await (ends.get(i) as Promise<ItemResult>);
                t.title = itemLine(o).slice(2);
                if (o.status === 'failed' || o.status === 'interrupted') throw new Error(o.error?.message ?? o.status);
                if (o.status === 'skipped') t.skip(t.title);
              },
            }));
            return task.newListr(
              withVerdict(lines, ended, (o) => (o.some((x) => x.status === 'failed' || x.status === 'interrupted') ? itemsLine(e.title, o) : null)),
              { concurrent: true, exitOnError: true },
            );
          });
          break;
        }
        case 'item-end':
          items.get(e.outcome.item)?.resolve(e.outcome);
          break;
        case 'items-end':
          itemsEnded(e.outcomes);
          break;
        case 'progress':
          // An item's line shows its phase and how far the command got; outside per-item work a phase's lines are its hosts.
          if (e.item !== undefined) items.get(e.item)?.progress(`${inPhase.get(e.item) ?? e.phase} — ${meter(e)}`);
          break;
        case 'host-start':
        case 'item-start':
          break;
      }
    },
    settle: () => running.then(() => undefined),
  };
}
