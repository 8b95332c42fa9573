// A loopback port free now, for a server a test starts right after; never
// the usual database ports (Debian's own services may take them later).

import * as net from 'node:net';

const SERVICE_PORTS: ReadonlySet<number> = new Set([3306, 5432, 6379]);

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    if (!SERVICE_PORTS.has(port)) return port;
  }
}
