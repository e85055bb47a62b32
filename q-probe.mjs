import { Queue } from 'bullmq';
const orig = console.error;
let n = 0;
console.error = (...a) => { n++; orig('SPIED', String(a[0]).slice(0, 80)); };
const q = new Queue('x', { connection: { host: '127.0.0.1', port: 1, maxRetriesPerRequest: null } }); if (process.argv[2]) q.on('error', (e) => orig('EVENT', String(e)));
await q.add('j', {}).catch((e) => orig('ADD', String(e))); await new Promise((r) => setTimeout(r, 2500));
orig('console.error calls', n);
await q.close().catch(() => {});
process.exit(0);
