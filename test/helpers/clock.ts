// A fake clock that hands out timer ids as Espruino does, for device code under test in Node. Espruino gives a new
// timer the highest id in use plus one (the first is 1), so an id comes back once the timers above it are gone: a
// handle kept after its timer fired or was cleared then cancels somebody else's timer. clearTimeout(undefined) and
// clearInterval(undefined) throw there; an id nobody holds is ignored; with no argument at all every timer goes.
// Time itself is @sinonjs/fake-timers'.
import FakeTimers from '@sinonjs/fake-timers';

export interface EspruinoClock {
  setTimeout(f: (...a: any[]) => void, ms?: number, ...args: any[]): number;
  setInterval(f: (...a: any[]) => void, ms?: number, ...args: any[]): number;
  clearTimeout(id?: number): void;
  clearInterval(id?: number): void;
  /** Advances the time by ms, running the timers that fall due. */
  tick(ms: number): void;
  /** Milliseconds since the clock was made (plus its start). */
  readonly now: number;
  /** Timers pending. */
  countTimers(): number;
}

export function espruinoClock(start = 0): EspruinoClock {
  const fake = FakeTimers.createClock(start);
  const live = new Map<number, { handle: any; interval: boolean }>();
  const nextId = () => (live.size ? Math.max(...live.keys()) : 0) + 1;
  const add = (interval: boolean, f: (...a: any[]) => void, ms: number | undefined, args: any[]) => {
    const id = nextId();
    const run = () => {
      if (!interval) live.delete(id);
      f(...args);
    };
    live.set(id, { handle: interval ? fake.setInterval(run, ms ?? 0) : fake.setTimeout(run, ms ?? 0), interval });
    return id;
  };
  function clear(this: void, ...a: any[]): void {
    if (!a.length) {
      for (const t of live.values()) fake.clearTimeout(t.handle);
      live.clear();
      return;
    }
    const id = a[0];
    if (id === undefined) throw new Error('clearTimeout(undefined) not allowed. Use clearTimeout() instead');
    const t = live.get(id);
    if (!t) return;
    live.delete(id);
    if (t.interval) fake.clearInterval(t.handle);
    else fake.clearTimeout(t.handle);
  }
  return {
    setTimeout: (f, ms, ...args) => add(false, f, ms, args),
    setInterval: (f, ms, ...args) => add(true, f, ms, args),
    clearTimeout: clear,
    clearInterval: clear,
    tick: (ms) => void fake.tick(ms),
    get now() {
      return fake.now;
    },
    countTimers: () => live.size,
  };
}
