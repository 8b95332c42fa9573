// Bounded line output: lines are joined and written once per turn of the event
// loop; when stdout cannot keep up (a slow pipe), lines are dropped and counted
// rather than buffered without limit.

import type { Logger } from '../util/log';

export class LineWriter {
  private pending: string[] = [];
  private scheduled = false;
  dropped = 0;

  constructor(
    private readonly stream: NodeJS.WritableStream & { writableLength?: number },
    private readonly logger: Logger,
    private readonly maxBufferedBytes = 64 * 1024 * 1024,
  ) {}

  line(s: string): void {
    if ((this.stream.writableLength ?? 0) > this.maxBufferedBytes) {
      this.dropped++;
      this.logger.warnOnce('stdout-full', 'output is not keeping up: dropping lines (counted in the exit summary)');
      return;
    }
    this.pending.push(s);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    this.stream.write(text);
  }

  /** Resolves once everything written so far has left the process. */
  end(): Promise<void> {
    this.flush();
    return new Promise((resolve) => this.stream.write('', () => resolve()));
  }
}
