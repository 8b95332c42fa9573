// Waiting for the end of a run: SIGINT, SIGTERM or a duration, whichever first.

export function runUntilSignal(durationSeconds: number | undefined): Promise<NodeJS.Signals | 'timeout'> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (why: NodeJS.Signals | 'timeout') => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (timer) clearTimeout(timer);
      resolve(why);
    };
    const onInt = () => done('SIGINT');
    const onTerm = () => done('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    if (durationSeconds !== undefined) timer = setTimeout(() => done('timeout'), durationSeconds * 1000);
  });
}
