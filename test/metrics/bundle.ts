// build/defender.js, fresh, through the one bundle loader (sim/bundle.ts), for the metrics tests.
import { loadBundle as load } from '../../sim/bundle.ts';

export function loadBundle(): any {
  return load('defender');
}
