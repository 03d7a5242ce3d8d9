#!/usr/bin/env node
// enssib kernel lab — serves a directory read-only over HTTP on 127.0.0.1 only
// (the lab's apt repository; the VMs reach it through an ssh reverse forward).
//
// Usage: node test/lab/kernel/serve-repo.mjs DIR [PORT]
// Prints the port it listens on (PORT, default any free one) on stdout, then
// serves GET and HEAD until it is killed. No listing, nothing outside DIR.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve, sep } from 'node:path';

const [dir, portArg] = process.argv.slice(2);
if (!dir) {
  console.error('usage: serve-repo.mjs DIR [PORT]');
  process.exit(2);
}
const root = resolve(dir);

const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const file = resolve(root, `.${path}`);
  let size = -1;
  if ((req.method === 'GET' || req.method === 'HEAD') && file.startsWith(root + sep)) {
    try {
      const st = statSync(file);
      if (st.isFile()) size = st.size;
    } catch {
      /* not found */
    }
  }
  if (size < 0) {
    res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 404 : 405, { 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
});
server.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  const addr = server.address();
  console.log(typeof addr === 'object' && addr ? addr.port : '');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
