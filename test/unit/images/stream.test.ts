import { describe, expect, it } from 'vitest';
import { BuildTracker, JsonLines, PushTracker, stripAnsi, type DockerMessage } from '../../../src/images/stream.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('JsonLines', () => {
  it('splits messages across chunks, even inside a UTF-8 character', () => {
    const p = new JsonLines();
    const text = '{"stream":"Step 1/2 : FROM scratch\\n"}\n{"stream":"é"}\n{"aux":{"ID":"sha256:ab"}}\n';
    const bytes = enc(text);
    const cut = text.indexOf('é') + 1; // inside the two bytes of é
    const out: DockerMessage[] = [...p.push(bytes.slice(0, 10)), ...p.push(bytes.slice(10, cut)), ...p.push(bytes.slice(cut)), ...p.end()];
    expect(out).toEqual([{ stream: 'Step 1/2 : FROM scratch\n' }, { stream: 'é' }, { aux: { ID: 'sha256:ab' } }]);
  });

  it('keeps a line that is not JSON as output, and a last line without newline', () => {
    const p = new JsonLines();
    expect(p.push('plain text\n{"status":"x"}')).toEqual([{ stream: 'plain text\n' }]);
    expect(p.end()).toEqual([{ status: 'x' }]);
  });
});

describe('BuildTracker', () => {
  const run = (msgs: DockerMessage[]) => {
    const t = new BuildTracker();
    const events = msgs.flatMap((m) => t.handle(m));
    events.push(...t.end());
    return { t, events };
  };

  it('follows the steps and keeps the image ID', () => {
    const { t, events } = run([
      { stream: 'Step 1/3 : FROM scratch' },
      { stream: '\n' },
      { stream: ' ---> Using cache\n ---> 1234\nStep 2/3 : COPY a /a\n' },
      { stream: 'Step 3/3 : LABEL x=y\n' },
      { aux: { ID: 'sha256:feed' } },
      { stream: 'Successfully built feed\n' },
    ]);
    expect(events.filter((e) => e.kind === 'step').map((e) => (e.kind === 'step' ? `${e.step.n}/${e.step.total} ${e.step.instruction}` : ''))).toEqual([
      '1/3 FROM scratch',
      '2/3 COPY a /a',
      '3/3 LABEL x=y',
    ]);
    expect(t.imageId).toBe('sha256:feed');
    expect(t.failure).toBeUndefined();
  });

  it('an {error, errorDetail} object is a failure with the step and its last lines', () => {
    const { t } = run([
      { stream: 'Step 1/2 : FROM base\n ---> 1\n' },
      { stream: 'Step 2/2 : RUN make\n ---> Running in abc\n' },
      ...Array.from({ length: 30 }, (_, i) => ({ stream: `line ${i}\n` })),
      { stream: '\x1b[91mcc: error\n\x1b[0m' },
      { errorDetail: { code: 2, message: "The command '/bin/sh -c make' returned a non-zero code: 2" }, error: "The command '/bin/sh -c make' returned a non-zero code: 2" },
    ]);
    expect(t.failure?.message).toBe("The command '/bin/sh -c make' returned a non-zero code: 2");
    expect(t.failure?.step).toEqual({ n: 2, total: 2, instruction: 'RUN make' });
    expect(t.failure?.lines.at(-1)).toBe('cc: error');
    expect(t.failure?.lines).not.toContain(' ---> Running in abc');
    expect(t.failure?.lines.length).toBeLessThanOrEqual(15);
    expect(t.failure?.lines[0]).toBe('line 16');
  });

  it('an error with only one of the two fields is still a failure', () => {
    expect(run([{ error: 'boom' }]).t.failure?.message).toBe('boom');
    expect(run([{ errorDetail: { message: 'bang' } }]).t.failure?.message).toBe('bang');
  });

  it('stripAnsi', () => {
    expect(stripAnsi('\x1b[91mred\x1b[0m \x1b[2Kx')).toBe('red x');
  });
});

describe('PushTracker', () => {
  it('takes the digest from the final aux message and counts uploaded and reused layers', () => {
    const t = new PushTracker();
    const msgs: DockerMessage[] = [
      { status: 'The push refers to repository [registry.enssib.test:5000/ldap]' },
      { status: 'Preparing', id: 'aaa' },
      { status: 'Preparing', id: 'bbb' },
      { status: 'Layer already exists', id: 'bbb' },
      { status: 'Pushing', id: 'aaa', progressDetail: { current: 512, total: 1024 }, progress: '[==>   ]' },
      { status: 'Pushed', id: 'aaa' },
      { status: 'latest: digest: sha256:' + '1'.repeat(64) + ' size: 528' },
      { progressDetail: {}, aux: { Tag: 'latest', Digest: 'sha256:' + '2'.repeat(64), Size: 528 } },
    ];
    for (const m of msgs) t.handle(m);
    expect(t.digest).toBe('sha256:' + '2'.repeat(64)); // the final aux message wins over the status line
    expect(t.uploaded).toBe(1);
    expect(t.reused).toBe(1);
    expect(t.summary()).toBe('2/2 layers, 0.0 MB/0.0 MB');
    expect(t.failure).toBeUndefined();
  });

  it('prefers the aux digest when it comes', () => {
    const t = new PushTracker();
    t.handle({ aux: { Tag: 't', Digest: 'sha256:' + '3'.repeat(64), Size: 1 } });
    t.handle({ status: 't: digest: sha256:' + '4'.repeat(64) + ' size: 1' });
    expect(t.digest).toBe('sha256:' + '3'.repeat(64));
  });

  it('an error inside the stream is a failure, with the last status lines', () => {
    const t = new PushTracker();
    t.handle({ status: 'The push refers to repository [r/x]' });
    t.handle({ errorDetail: { message: 'Get "https://r/v2/": x509: certificate signed by unknown authority' }, error: 'x509' });
    expect(t.failure?.message).toContain('x509: certificate signed by unknown authority');
    expect(t.failure?.lines).toEqual(['The push refers to repository [r/x]']);
    expect(t.digest).toBeUndefined();
  });
});
