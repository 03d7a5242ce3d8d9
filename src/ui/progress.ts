import { Listr, ListrLogger, ProcessOutput } from 'listr2';
import type { RunEvent, RunObserver } from '../engine/events.js';
import type { HostOutcome, PhaseOutcome } from '../engine/types.js';

/** `default`: listr2 on a terminal; `simple`: plain lines (no TTY, CI, a log file); `silent`: nothing (JSON output, client dry run). */
export type ProgressRenderer = 'default' | 'simple' | 'silent';

/** How the progress of a plan is shown on stderr (stdout carries only results). */
export function progressObserver(renderer: ProgressRenderer, stream: NodeJS.WritableStream = process.stderr): RunObserver | undefined {
  if (renderer === 'silent') return undefined;
  return renderer === 'default' ? listrObserver() : plainObserver(stream);
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
  const failed = p.hosts.filter((h) => h.status === 'failed').length;
  if (failed > 0) return `✖ ${p.title} — ${failed} of ${p.hosts.length} host${p.hosts.length > 1 ? 's' : ''} failed`;
  if (p.hosts.every((h) => h.status === 'skipped')) return `· ${p.title} — skipped`;
  return `✔ ${p.title}`;
}

function undoLine(e: Extract<RunEvent, { type: 'undo-end' }>): string {
  const u = e.outcome;
  return u.ok ? `  ↩ ${u.host}: undone — ${u.phase}` : `  ✖ ${u.host}: UNDO FAILED — ${u.phase}: ${(u.error?.message ?? '').replace(/\r/g, '')}`;
}

/** Plain lines, one per host as it ends and one per phase with its true status. */
function plainObserver(stream: NodeJS.WritableStream): RunObserver {
  const write = (l: string) => stream.write(`${l}\n`);
  return {
    event(e) {
      switch (e.type) {
        case 'phase-start':
          write(`→ ${e.title}`);
          break;
        case 'host-end':
          write(`  ${hostLine(e.outcome)}`);
          break;
        case 'phase-end':
          write(phaseLine(e.outcome));
          break;
        case 'undo-start':
          write(`↩ undoing what this run did (${e.steps} step${e.steps > 1 ? 's' : ''})`);
          break;
        case 'undo-end':
          write(undoLine(e));
          break;
        case 'host-start':
          break;
      }
    },
  };
}

/** listr2 on a terminal: one list per phase, one line per host, resolved by the runner's events. */
function listrObserver(): RunObserver {
  const stream = process.stderr;
  const logger = () => new ListrLogger({ processOutput: new ProcessOutput(stream, stream) });
  let running: Promise<unknown> = Promise.resolve();
  let waiting = new Map<string, (o: HostOutcome) => void>();
  let phaseEnded: (p: PhaseOutcome) => void = () => undefined;
  return {
    event(e) {
      switch (e.type) {
        case 'phase-start': {
          const ends = new Map<string, Promise<HostOutcome>>();
          waiting = new Map();
          for (const h of e.hosts) ends.set(h, new Promise<HostOutcome>((resolve) => waiting.set(h, resolve)));
          const ended = new Promise<PhaseOutcome>((resolve) => (phaseEnded = resolve));
          const list = new Listr(
            [
              {
                title: e.title,
                task: (_ctx, task) => {
                  // listr2 marks a parent done even when a host failed: the title says the truth.
                  void ended.then((p) => (task.title = phaseLine(p).slice(2)));
                  return task.newListr(
                    e.hosts.map((h) => ({
                      title: h,
                      task: async (_c, t) => {
                        const o = await (ends.get(h) as Promise<HostOutcome>);
                        t.title = hostLine(o).slice(2);
                        if (o.status === 'failed') throw new Error(reason(o));
                        if (o.status === 'skipped' || o.status === 'after-apply') t.skip(t.title);
                      },
                    })),
                    { concurrent: true, exitOnError: false },
                  );
                },
              },
            ],
            {
              renderer: 'default',
              exitOnError: false,
              collectErrors: false,
              registerSignalListeners: false,
              rendererOptions: { logger: logger(), collapseErrors: false, showErrorMessage: false },
            },
          );
          running = list.run().catch(() => undefined);
          break;
        }
        case 'host-end':
          waiting.get(e.outcome.host)?.(e.outcome);
          break;
        case 'undo-start':
          stream.write(`↩ undoing what this run did (${e.steps} step${e.steps > 1 ? 's' : ''})\n`);
          break;
        case 'undo-end':
          stream.write(`${undoLine(e)}\n`);
          break;
        case 'phase-end':
          phaseEnded(e.outcome);
          break;
        case 'host-start':
          break;
      }
    },
    settle: () => running.then(() => undefined),
  };
}
