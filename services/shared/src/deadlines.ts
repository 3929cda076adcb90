/**
 * Deadlines that a party watches (a hub's referrals nobody has accepted, a liaison's referrals
 * at the border): which ones have passed, at a cost of the deadlines that passed since the last
 * look plus those still waiting to be acted on, not of everything held. Services ask every
 * second.
 */
export class DeadlineWatch {
  private readonly queue = new DeadlineQueue();
  /** Past their deadline and not yet seen settled: looked at again on every call. */
  private readonly due = new Set<string>();

  /** Watches `id` until `deadline` (an ISO time); watching it again adds another entry. */
  watch(deadline: string, id: string): void {
    this.queue.push(Date.parse(deadline), id);
  }

  /**
   * The ids whose deadline has passed at `now` and that are still pending: `pendingDeadline(id)`
   * gives an id's current deadline, or undefined once nothing is awaited any more (it is then
   * forgotten; watching it again brings it back). An id whose deadline moved later, or whose
   * deadline is after `now` because the clock stepped back, stays due for a later call.
   */
  overdue(now: Date, pendingDeadline: (id: string) => string | undefined): string[] {
    for (const id of this.queue.popUntil(now.getTime())) this.due.add(id);
    const out: string[] = [];
    const t = now.getTime();
    for (const id of this.due) {
      const deadline = pendingDeadline(id);
      if (deadline === undefined) this.due.delete(id);
      else if (Date.parse(deadline) <= t) out.push(id);
    }
    return out;
  }
}

/** A binary min-heap of (time, referral id). */
class DeadlineQueue {
  private readonly times: number[] = [];
  private readonly ids: string[] = [];

  push(time: number, id: string): void {
    // An unreadable deadline never passes (schemas make every deadline a date-time).
    if (Number.isNaN(time)) return;
    const { times, ids } = this;
    let i = times.length;
    times.push(time);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent]! <= time) break;
      times[i] = times[parent]!;
      ids[i] = ids[parent]!;
      i = parent;
    }
    times[i] = time;
    ids[i] = id;
  }

  /** Removes and returns the ids whose time is at or before `t`, earliest first. */
  popUntil(t: number): string[] {
    const out: string[] = [];
    while (this.times.length > 0 && this.times[0]! <= t) out.push(this.pop());
    return out;
  }

  private pop(): string {
    const { times, ids } = this;
    const top = ids[0]!;
    const lastTime = times.pop()!;
    const lastId = ids.pop()!;
    const n = times.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && times[right]! < times[left]! ? right : left;
      if (times[child]! >= lastTime) break;
      times[i] = times[child]!;
      ids[i] = ids[child]!;
      i = child;
    }
    times[i] = lastTime;
    ids[i] = lastId;
    return top;
  }
}
