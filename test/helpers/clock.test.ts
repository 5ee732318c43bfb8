// The fake clock hands out and reuses timer ids as the Espruino interpreter does (checked there by hand: a=1 b=2
// c=3, b cleared, the next is 4; a timer made while ids 1, 4, 5, 6 are held gets 7).
import test from 'ava';
import { espruinoClock } from './clock.ts';

test('ids are the highest in use plus one, so a stale handle cancels a newer timer', (t) => {
  const clock = espruinoClock();
  const fired: string[] = [];
  const a = clock.setTimeout(() => fired.push('a'), 10);
  t.is(a, 1);
  clock.tick(10);
  const b = clock.setInterval(() => fired.push('b'), 5);
  t.is(b, 1, 'the id of a timer that fired comes back');
  clock.clearTimeout(a); // a stale handle: cancels b
  clock.tick(20);
  t.deepEqual(fired, ['a']);
  t.is(clock.countTimers(), 0);
});

test('clearing undefined throws, an unknown id is ignored, no argument clears all', (t) => {
  const clock = espruinoClock();
  clock.setTimeout(() => t.fail(), 10);
  clock.setInterval(() => t.fail(), 10);
  t.throws(() => clock.clearTimeout(undefined));
  t.throws(() => clock.clearInterval(undefined));
  clock.clearTimeout(99);
  t.is(clock.countTimers(), 2);
  clock.clearInterval();
  clock.tick(100);
  t.is(clock.countTimers(), 0);
});
