/** Serialises work per key (e.g. per referral) while different keys proceed concurrently. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

/**
 * Shared or exclusive turns (a readers-writer lock that prefers the writer): work runs side by
 * side in shared turns, and an exclusive turn runs alone, after the shared ones under way, before
 * any shared one asked for after it. The party handles a message suspected of crashing the
 * process in an exclusive turn, so that a crash then points at that message alone.
 */
export class Turns {
  private shared = 0;
  private exclusive = false;
  private readonly waiting: { exclusive: boolean; go: () => void }[] = [];

  run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return new Promise<void>((go) => {
      if (this.mayStart(exclusive)) this.start(exclusive, go);
      else this.waiting.push({ exclusive, go });
    })
      .then(fn)
      .finally(() => {
        if (exclusive) this.exclusive = false;
        else this.shared -= 1;
        this.wake();
      });
  }

  private mayStart(exclusive: boolean): boolean {
    if (this.exclusive || this.waiting.length > 0) return false;
    return exclusive ? this.shared === 0 : true;
  }

  private start(exclusive: boolean, go: () => void): void {
    if (exclusive) this.exclusive = true;
    else this.shared += 1;
    go();
  }

  private wake(): void {
    while (this.waiting.length > 0 && !this.exclusive) {
      const next = this.waiting[0];
      if (next === undefined || (next.exclusive && this.shared > 0)) return;
      this.waiting.shift();
      this.start(next.exclusive, next.go);
      if (next.exclusive) return;
    }
  }
}
