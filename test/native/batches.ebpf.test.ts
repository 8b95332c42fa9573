// eBPF: batches from the poll thread, framed as native/batch_format.h says,
// carrying a selected child's TCP traffic; and drop accounting when JS is slow.

import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';

import { BATCH_FRAME_HEADER_BYTES, forEachBatchRecord, loadNativeBinding } from '../../src/capture/native-binding';
import { ebpfTest } from '../helpers/ebpf';
import {
  DATA_EVENT,
  DIR_EGRESS,
  DIR_INGRESS,
  EV_DATA,
  STAT_EVENTS_LOST,
  STAT_EVENTS_SENT,
  openSession,
  sessionOptions,
  sleep,
  spawnTcpClient,
  waitFor,
} from './support';

interface DataRecord {
  tgid: number;
  dir: number;
  payload: string;
}

/** A TCP server on 127.0.0.1 that answers each connection once with `reply`, then ends it. */
async function replyServer(reply: string): Promise<{ port: number; close(): void }> {
  const server = net.createServer((sock) => {
    sock.once('data', () => sock.end(reply));
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

ebpfTest.serial('batches are framed as documented and carry a selected child\'s TCP payloads', async (t) => {
  const binding = loadNativeBinding();
  const payloadOffset = binding.layout.dataEventBytes;
  const marker = `PING-${process.pid}-${Date.now()}`;
  const reply = `PONG-${marker}`;
  const server = await replyServer(reply);

  const data: DataRecord[] = [];
  let batches = 0;
  const framingErrors: string[] = [];
  const session = openSession(binding, {
    onBatch: (batch, records) => {
      batches++;
      if (batch.length % 8 !== 0) framingErrors.push(`batch length ${batch.length} not a multiple of 8`);
      const counted = forEachBatchRecord(batch, (offset, length) => {
        const header = offset - BATCH_FRAME_HEADER_BYTES;
        if (batch.readUInt32LE(header + 4) !== 0) framingErrors.push(`reserved word not 0 at ${header}`);
        for (let i = offset + length; i < offset + Math.ceil(length / 8) * 8; i++) {
          if (batch[i] !== 0) framingErrors.push(`padding byte not 0 at ${i}`);
        }
        if (offset % 8 !== 0) framingErrors.push(`record not 8-aligned at ${offset}`);
        if (batch.readUInt32LE(offset + DATA_EVENT.type) !== EV_DATA) return;
        const captured = batch.readUInt32LE(offset + DATA_EVENT.captured);
        if (payloadOffset + captured > length) framingErrors.push(`data event shorter than its payload at ${offset}`);
        data.push({
          tgid: batch.readUInt32LE(offset + DATA_EVENT.tgid),
          dir: batch.readUInt8(offset + DATA_EVENT.dir),
          payload: batch.toString('latin1', offset + payloadOffset, offset + payloadOffset + captured),
        });
      });
      if (counted !== records) framingErrors.push(`batch says ${records} records, framing has ${counted}`);
    },
  });
  try {
    session.attachAll();
    session.start();
    const client = spawnTcpClient(server.port, marker);
    session.selectTgid(client.child.pid!, true);
    client.go();
    t.is(await client.exited, 0);

    const sent = (d: DataRecord) => d.tgid === client.child.pid && d.dir === DIR_EGRESS && d.payload.includes(marker);
    const received = (d: DataRecord) => d.tgid === client.child.pid && d.dir === DIR_INGRESS && d.payload.includes(reply);
    t.true(await waitFor(() => data.some(sent) && data.some(received), 5000), `data events seen: ${JSON.stringify(data.slice(0, 10))}`);
    t.deepEqual(framingErrors, []);
    t.true(batches > 0);
    t.true(data.every((d) => d.tgid === client.child.pid), 'only the selected process is traced');

    const stats = session.stats();
    t.true(stats.running);
    t.is(stats.pollError, null);
    t.true(stats.polls > 0);
    t.is(stats.kernel.length, binding.layout.statCount);
    t.true(stats.kernel[STAT_EVENTS_SENT]! >= BigInt(stats.recordsDelivered));
    t.is(stats.batchesDelivered, batches);
  } finally {
    session.close();
    server.close();
  }
});

ebpfTest.serial('a blocked JS thread makes batches drop, counted, while the kernel side keeps draining', async (t) => {
  const binding = loadNativeBinding();
  const server = net.createServer((sock) => {
    sock.on('data', () => {});
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  let delivered = 0;
  const session = openSession(binding, {
    batchBytes: 4096, // a few records a batch: many batches
    maxPendingBatches: 1,
    pollTimeoutMs: 5,
    onBatch: (_batch, records) => {
      delivered += records;
    },
  });
  try {
    session.attachAll();
    session.start();
    const client = spawnTcpClient(port, 'x'.repeat(200), 3000);
    session.selectTgid(client.child.pid!, true);
    client.go();
    // Hold the JS thread while the child writes: the queue (1 batch) fills.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      /* busy: no callback can run */
    }
    t.is(await client.exited, 0);

    const settled = () => {
      const s = session.stats();
      return s.kernel[STAT_EVENTS_SENT] === BigInt(s.recordsDelivered + s.recordsDropped);
    };
    t.true(await waitFor(settled, 5000), JSON.stringify(session.stats(), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    const stats = session.stats();
    t.log(`sent ${stats.kernel[STAT_EVENTS_SENT]}, delivered ${stats.recordsDelivered} in ${stats.batchesDelivered} batches, dropped ${stats.recordsDropped} in ${stats.batchesDropped}`);
    t.true(stats.batchesDropped > 0, 'some batches dropped');
    t.true(stats.bytesDropped >= stats.recordsDropped * 8);
    t.is(stats.recordsDelivered, delivered);
    t.is(stats.kernel[STAT_EVENTS_LOST], 0n, 'the ring buffer never filled: the thread kept draining');
  } finally {
    session.close();
    server.close();
  }
});

ebpfTest.serial('peer failure class: a burst that overflows the ring buffer is counted in events_lost, and capture recovers at once', async (t) => {
  const binding = loadNativeBinding();
  const payloadOffset = binding.layout.dataEventBytes;
  const marker = `AFTER-${process.pid}-${Date.now()}`;
  // Reads everything, ends when the client does.
  const sink = net.createServer((sock) => {
    sock.resume();
    sock.on('end', () => sock.end());
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const server = { port: (sink.address() as net.AddressInfo).port, close: () => sink.close() };
  const seen: string[] = [];
  // Two pages of ring and a reader woken only by its poll timeout: a burst of thousands of writes cannot fit.
  const session = openSession(binding, {
    ringBufferBytes: 8192,
    config: { ...sessionOptions().config, captureBytes: 512 },
    pollTimeoutMs: 50,
    onBatch: (batch) => {
      forEachBatchRecord(batch, (offset) => {
        if (batch.readUInt32LE(offset + DATA_EVENT.type) !== EV_DATA) return;
        const captured = batch.readUInt32LE(offset + DATA_EVENT.captured);
        seen.push(batch.toString('latin1', offset + payloadOffset, offset + payloadOffset + captured));
      });
    },
  });
  // One connection: 4000 writes of 512 bytes as fast as they go, a pause, then one marked write.
  const script = `
    const net = require('node:net');
    process.stdin.once('data', () => {
      process.stdin.destroy();
      const sock = net.connect(${server.port}, '127.0.0.1', () => {
        const chunk = Buffer.alloc(512, 0x61);
        for (let i = 0; i < 3999; i++) sock.write(chunk);
        // Once the burst is on the wire, a pause, then the marker in a syscall of its own.
        sock.write(chunk, () => setTimeout(() => sock.end(${JSON.stringify(marker)}), 500));
      });
      sock.on('data', () => {});
      sock.on('close', () => process.exit(0));
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    session.attachAll();
    session.start();
    session.selectTgid(child.pid!, true);
    child.stdin!.write('go\n');
    t.is(await exited, 0);
    t.true(await waitFor(() => seen.some((p) => p.includes(marker)), 5000), 'the write after the burst is captured');
    const stats = session.stats();
    t.true(stats.kernel[STAT_EVENTS_LOST]! > 0n, `events_lost ${stats.kernel[STAT_EVENTS_LOST]}`);
    t.is(stats.pollError, null);
    t.true(stats.running);
  } finally {
    session.close();
    server.close();
  }
});

ebpfTest.serial('batchDelayMs: the poll thread holds a batch until its time is up, flush() hands it over at once, a process event at once', async (t) => {
  const binding = loadNativeBinding();
  const payloadOffset = binding.layout.dataEventBytes;
  const server = await replyServer('PONG');
  const delayMs = 1500;
  // Each delivery: when, and the markers its data events carried.
  const deliveries: Array<{ atMs: number; markers: string[] }> = [];
  const session = openSession(binding, {
    pollTimeoutMs: 10,
    batchDelayMs: delayMs,
    onBatch: (batch) => {
      const markers: string[] = [];
      forEachBatchRecord(batch, (offset) => {
        if (batch.readUInt32LE(offset + DATA_EVENT.type) !== EV_DATA) return;
        const captured = batch.readUInt32LE(offset + DATA_EVENT.captured);
        const m = /MARK-\d/.exec(batch.toString('latin1', offset + payloadOffset, offset + payloadOffset + captured));
        if (m) markers.push(m[0]);
      });
      deliveries.push({ atMs: Date.now(), markers });
    },
  });
  // A selected client that sends its marker, gets the reply and stays alive
  // (its exit is a process event, which is not held) until told to go.
  const client = async (marker: string) => {
    const script = `
      const net = require('node:net');
      const sock = net.connect(${server.port}, '127.0.0.1', () => sock.write(${JSON.stringify('x')}.replace('x', process.argv[1])));
      sock.on('data', () => {});
      sock.on('close', () => process.stdout.write('done\\n'));
      process.stdin.once('data', () => process.exit(0));`;
    const child = spawn(process.execPath, ['-e', script, marker], { stdio: ['pipe', 'pipe', 'inherit'] });
    session.selectTgid(child.pid!, true);
    const goMs = Date.now();
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { goMs, exit: async () => (child.stdin!.write('go\n'), await exited) };
  };
  const carrying = (marker: string) => deliveries.filter((d) => d.markers.includes(marker));
  try {
    session.attachAll();
    session.start();

    // Held: 300 ms after the exchange (30 polls), nothing of it has reached JS; flush() brings it.
    const one = await client('MARK-1');
    await new Promise((r) => setTimeout(r, 300));
    t.deepEqual(carrying('MARK-1'), []);
    const polls = session.stats().polls;
    t.true(polls >= 10, `the ring is still polled meanwhile (${polls} polls)`);
    const flushMs = Date.now();
    session.flush();
    t.true(await waitFor(() => carrying('MARK-1').length > 0, delayMs - 500), 'flush() handed the held batch over');
    t.true(carrying('MARK-1')[0]!.atMs - flushMs < delayMs - 500);
    t.is(await one.exit(), 0);
    t.true(await waitFor(() => session.stats().recordsDelivered === Number(session.stats().kernel[STAT_EVENTS_SENT]), delayMs - 500), 'its exit event went at once');

    // Not flushed: it goes when its time is up, not before.
    const two = await client('MARK-2');
    t.true(await waitFor(() => carrying('MARK-2').length > 0, delayMs + 5000), 'handed over once its time was up');
    t.true(carrying('MARK-2')[0]!.atMs - two.goMs >= delayMs, `after ${carrying('MARK-2')[0]!.atMs - two.goMs} ms`);
    t.is(await two.exit(), 0);

    // A process event in the batch: it goes at once, with the data before it.
    const three = await client('MARK-3');
    const exitMs = Date.now();
    t.is(await three.exit(), 0);
    t.true(await waitFor(() => carrying('MARK-3').length > 0, delayMs - 500), 'the exit took the held batch along');
    t.true(carrying('MARK-3')[0]!.atMs - exitMs < delayMs - 500);
    t.is(session.stats().batchesFull, 0);
  } finally {
    session.close();
    server.close();
  }
});

// The wake-up policy with wakeup_bytes set (what `run` uses): records below it
// wait for the poll timeout; the record that takes the waiting data across it
// wakes the reader.
ebpfTest.serial('wakeup_bytes: data below it waits for the poll timeout, the write that crosses it wakes the reader', async (t) => {
  const binding = loadNativeBinding();
  const sink = net.createServer((sock) => {
    sock.on('data', () => {});
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const port = (sink.address() as net.AddressInfo).port;
  const egress: number[] = [];
  const session = openSession(binding, {
    config: { ...sessionOptions().config, wakeupBytes: 16384, captureBytes: 4096 },
    pollTimeoutMs: 30_000,
    batchDelayMs: 0,
    onBatch: (batch) => {
      forEachBatchRecord(batch, (offset) => {
        if (batch.readUInt32LE(offset + DATA_EVENT.type) === EV_DATA && batch.readUInt8(offset + DATA_EVENT.dir) === DIR_EGRESS) {
          egress.push(batch.readUInt32LE(offset + DATA_EVENT.size_field));
        }
      });
    },
  });
  // A selected child that writes, per line on stdin, the sizes the line lists (one write each).
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const sock = require('node:net').connect(${port}, '127.0.0.1', () => process.stdout.write('connected\\n'));
       require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
         for (const n of l.split(' ')) sock.write('w'.repeat(Number(n)));
         process.stdout.write('written\\n');
       }).on('close', () => sock.end(() => process.exit(0)));`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  try {
    session.attachAll();
    session.start();
    session.selectTgid(child.pid!, true);
    t.is((await lines.next()).value, 'connected');
    child.stdin!.write('1000\n');
    t.is((await lines.next()).value, 'written');
    await sleep(1000);
    t.deepEqual(egress, [], 'about 1 KiB waits: no wake-up');
    // 1 KiB + four records of ~4 KiB: the fourth crosses 16 KiB.
    child.stdin!.write('4000 4000 4000 4000\n');
    t.is((await lines.next()).value, 'written');
    t.true(await waitFor(() => egress.length === 5, 3000), `egress records seen: ${JSON.stringify(egress)}`);
    t.deepEqual(egress, [1000, 4000, 4000, 4000, 4000]);
  } finally {
    child.stdin!.end();
    session.close();
    sink.close();
  }
});
