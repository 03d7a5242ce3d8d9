/**
 * The Docker engine's progress streams (build, push, pull): one JSON object per
 * line. Failures arrive inside the stream as `{error, errorDetail}` objects
 * while the HTTP request itself succeeds, so every stream is read through
 * these trackers, which turn such an object into a failure.
 */
export interface DockerMessage {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { code?: number; message?: string };
  aux?: Record<string, unknown>;
}

/** Splits a byte stream into messages; keeps partial lines between chunks. A line that is not JSON becomes `{stream}`. */
export class JsonLines {
  private rest = '';
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array | string): DockerMessage[] {
    this.rest += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const parts = this.rest.split('\n');
    this.rest = parts.pop() ?? '';
    return parts.flatMap((p) => parseLine(p));
  }

  end(): DockerMessage[] {
    const last = this.rest + this.decoder.decode();
    this.rest = '';
    return parseLine(last);
  }
}

function parseLine(line: string): DockerMessage[] {
  const t = line.trim();
  if (t === '') return [];
  try {
    const v: unknown = JSON.parse(t);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return [v as DockerMessage];
  } catch {
    /* not JSON: keep it as output */
  }
  return [{ stream: `${line}\n` }];
}

/** Keeps the last `max` items. */
class Tail {
  private items: string[] = [];
  constructor(private readonly max: number) {}
  push(s: string) {
    this.items.push(s);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
  }
  clear() {
    this.items = [];
  }
  get lines(): string[] {
    return [...this.items];
  }
}

export interface Step {
  n: number;
  total: number;
  /** e.g. "RUN make install" */
  instruction: string;
}

export type BuildEvent = { kind: 'step'; step: Step } | { kind: 'output'; line: string };

export interface StreamFailure {
  message: string;
  /** The step being run when it failed (build only). */
  step?: Step;
  /** The last lines of output of that step. */
  lines: string[];
}

/** Follows a classic-builder stream: steps ("Step 3/7 : RUN …"), output, the image ID, the error. */
export class BuildTracker {
  step: Step | undefined;
  imageId: string | undefined;
  failure: StreamFailure | undefined;
  private text = '';
  private readonly stepLines: Tail;

  constructor(tailLines = 15) {
    this.stepLines = new Tail(tailLines);
  }

  handle(m: DockerMessage): BuildEvent[] {
    const events: BuildEvent[] = [];
    if (typeof m.stream === 'string') {
      this.text += m.stream;
      const parts = this.text.split('\n');
      this.text = parts.pop() ?? '';
      for (const p of parts) events.push(...this.line(p));
    }
    if (typeof m.status === 'string') {
      // Pulling a base image during the build.
      const line = `${m.id ? `${m.id}: ` : ''}${m.status}${m.progress ? ` ${m.progress}` : ''}`;
      if (!m.progressDetail?.total) events.push(...this.line(line));
    }
    const id = m.aux?.ID;
    if (typeof id === 'string') this.imageId = id;
    if (m.error !== undefined || m.errorDetail !== undefined) {
      if (this.text !== '') events.push(...this.line(this.text));
      this.text = '';
      this.failure = {
        message: (m.errorDetail?.message ?? m.error ?? 'the build failed').trim(),
        ...(this.step ? { step: this.step } : {}),
        lines: this.stepLines.lines,
      };
    }
    return events;
  }

  /** At the end of the stream: flush a last unterminated line. */
  end(): BuildEvent[] {
    const rest = this.text;
    this.text = '';
    return rest === '' ? [] : this.line(rest);
  }

  private line(raw: string): BuildEvent[] {
    const line = stripAnsi(raw.replace(/\r$/, ''));
    const m = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
    if (m) {
      this.step = { n: Number(m[1]), total: Number(m[2]), instruction: (m[3] ?? '').trim() };
      this.stepLines.clear();
      return [{ kind: 'step', step: this.step }];
    }
    if (line.trim() === '') return [];
    // The builder's own bookkeeping is not the step's output.
    if (!/^ ---> |^Removing intermediate container |^Successfully (built|tagged) /.test(line)) this.stepLines.push(line);
    return [{ kind: 'output', line }];
  }
}

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, 'g');

/** Colour and cursor codes a RUN step may print. */
export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

export type LayerState = 'preparing' | 'waiting' | 'pushing' | 'pushed' | 'exists' | 'other';

export interface PushEvent {
  kind: 'layer' | 'output';
  line: string;
}

/** Follows a push (or pull) stream: per-layer states, bytes, the final digest from the aux message, the error. */
export class PushTracker {
  digest: string | undefined;
  size: number | undefined;
  failure: StreamFailure | undefined;
  readonly layers = new Map<string, { state: LayerState; current: number; total: number }>();
  private readonly last = new Tail(15);

  handle(m: DockerMessage): PushEvent[] {
    const events: PushEvent[] = [];
    const aux = m.aux;
    if (aux && typeof aux.Digest === 'string') {
      this.digest = aux.Digest;
      if (typeof aux.Size === 'number') this.size = aux.Size;
    }
    if (typeof m.status === 'string') {
      const status = m.status;
      if (m.id && !/^[^:]+: digest: /.test(status)) {
        const layer = this.layers.get(m.id) ?? { state: 'other' as LayerState, current: 0, total: 0 };
        layer.state = layerState(status, layer.state);
        if (m.progressDetail?.total) {
          layer.total = m.progressDetail.total;
          layer.current = m.progressDetail.current ?? layer.current;
        }
        this.layers.set(m.id, layer);
        if (!m.progressDetail?.total) {
          const line = `${m.id}: ${status}`;
          this.last.push(line);
          events.push({ kind: 'layer', line });
        }
      } else {
        // "The push refers to repository […]", "<tag>: digest: sha256:… size: 528"
        const dm = /digest: (sha256:[0-9a-f]{64})/.exec(status);
        if (dm && !this.digest) this.digest = dm[1];
        this.last.push(status);
        events.push({ kind: 'output', line: status });
      }
    }
    if (m.error !== undefined || m.errorDetail !== undefined) {
      this.failure = { message: (m.errorDetail?.message ?? m.error ?? 'the push failed').trim(), lines: this.last.lines };
    }
    return events;
  }

  /** Layers uploaded by this push (not those the registry already had). */
  get uploaded(): number {
    return [...this.layers.values()].filter((l) => l.state === 'pushed').length;
  }

  get reused(): number {
    return [...this.layers.values()].filter((l) => l.state === 'exists').length;
  }

  /** "2/3 layers, 12.5 MB/50.0 MB" */
  summary(): string {
    const all = [...this.layers.values()];
    const done = all.filter((l) => l.state === 'pushed' || l.state === 'exists').length;
    const cur = all.reduce((s, l) => s + (l.state === 'pushed' ? Math.max(l.total, l.current) : l.current), 0);
    const tot = all.reduce((s, l) => s + l.total, 0);
    return `${done}/${all.length} layers${tot > 0 ? `, ${mb(cur)}/${mb(tot)}` : ''}`;
  }
}

function layerState(status: string, prev: LayerState): LayerState {
  if (status === 'Preparing') return 'preparing';
  if (status === 'Waiting') return 'waiting';
  if (status === 'Pushing') return 'pushing';
  if (status === 'Pushed') return 'pushed';
  if (status === 'Layer already exists' || status.startsWith('Mounted from')) return 'exists';
  return prev;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
