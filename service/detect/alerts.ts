// Where a violation event goes, as AWS sends it to SNS: an MQTT topic on the service's own broker, an HTTP webhook
// (retried with exponential back-off by p-retry), and the service log. The message is AWS's violation event
// (ListViolationEvents / the SNS message): the same JSON for every target.
import pRetry, { AbortError } from 'p-retry';
import { ALERT_PREFIX, alertTopic } from '../topics.ts';
import type { MetricValue } from './metrics.ts';
import type { Behavior } from './profile.ts';

export type ViolationEventType = 'in-alarm' | 'alarm-cleared';

/** The alert: AWS's ViolationEvent fields, with times in epoch ms as AWS's SNS messages carry them. */
export interface AlertMessage {
  violationId: string;
  thingName: string;
  securityProfileName: string;
  behavior: Record<string, unknown>;
  violationEventType: ViolationEventType;
  /** The datapoint, as an AWS MetricValue ({count}, {number}, {cidrs}, {ports}, {numbers} or {strings}). */
  metricValue: Record<string, unknown>;
  violationEventTime: number;
  /** When the violation started (epoch ms); the same as violationEventTime for in-alarm. */
  violationStartTime: number;
  /** The report whose datapoint raised or cleared it; absent for a cloud-side metric (the broker's interval that
   * ended at violationEventTime). */
  reportId?: number;
}

export interface WebhookOptions {
  url: string;
  /** Extra headers (an Authorization, ...). */
  headers?: Record<string, string>;
  /** Attempts after the first (default 5). */
  retries?: number;
  /** First wait in ms, doubled each time up to maxTimeout (defaults 1000 and 60000). */
  minTimeout?: number;
  maxTimeout?: number;
  /** Per-request timeout in ms (default 10000). */
  timeout?: number;
}

export interface AlertOptions {
  /** MQTT topic prefix; each alert goes to PREFIX/THING at QoS 1 (default "defender/alerts"); false: none. */
  topic?: string | false;
  /** A URL, or options: each alert is POSTed as JSON. */
  webhook?: string | WebhookOptions;
  /** One line per alert in the service log (default true). */
  log?: boolean;
}

/** A datapoint as AWS's MetricValue: `count` for AWS's own number metrics, `number` for a custom one. */
export function metricValueOf(b: Behavior, v: MetricValue): Record<string, unknown> {
  switch (b.type) {
    case 'number':
      return b.metric.startsWith('aws:') ? { count: v } : { number: v };
    case 'ip-address-list':
      return { cidrs: v };
    case 'port-list':
      return { ports: v };
    case 'number-list':
      return { numbers: v };
    default:
      return { strings: v };
  }
}

export class Alerts {
  private readonly pending = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly webhook?: WebhookOptions;
  readonly topic: string | false;

  constructor(
    private readonly opts: AlertOptions,
    /** Publishes on the service's broker (QoS 1); absent: no MQTT target. */
    private readonly publish: ((topic: string, payload: string) => Promise<void>) | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.topic = opts.topic === undefined ? ALERT_PREFIX : opts.topic;
    this.webhook = typeof opts.webhook === 'string' ? { url: opts.webhook } : opts.webhook;
  }

  /** Sends one alert to every target; resolves once each has it or has failed for good (never rejects). */
  send(m: AlertMessage): Promise<void> {
    if (this.opts.log !== false) {
      const what = m.violationEventType === 'in-alarm' ? 'VIOLATION' : 'cleared';
      this.log(`[${m.thingName}] ${what} ${m.securityProfileName}/${m.behavior.name} (${m.behavior.metric}): ${JSON.stringify(m.metricValue)} ${m.reportId === undefined ? 'broker interval' : `report ${m.reportId}`}, violation ${m.violationId}`);
    }
    const body = JSON.stringify(m);
    const jobs: Promise<void>[] = [];
    if (this.topic !== false && this.publish) jobs.push(this.mqtt(this.publish, alertTopic(m.thingName, this.topic), body, m));
    if (this.webhook) jobs.push(this.post(this.webhook, body, m));
    const all = Promise.all(jobs).then(() => {});
    this.pending.add(all);
    void all.finally(() => this.pending.delete(all));
    return all;
  }

  /** Publishes, until acknowledged or close() gives up (a broker may never acknowledge: one that refuses by closing
   * the connection gets it again at each reconnect). */
  private async mqtt(publish: (topic: string, payload: string) => Promise<void>, topic: string, body: string, m: AlertMessage): Promise<void> {
    const signal = this.abort.signal;
    let onAbort = () => {};
    const givenUp = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([publish(topic, body), givenUp]);
    } catch (err) {
      const why = signal.aborted && err === signal.reason ? 'not acknowledged, given up at close' : `not published: ${(err as Error).message}`;
      this.log(`alert ${m.violationId} (${m.violationEventType}) to MQTT ${topic} ${why}`);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async post(w: WebhookOptions, body: string, m: AlertMessage): Promise<void> {
    const signal = this.abort.signal;
    try {
      await pRetry(
        async () => {
          const res = await fetch(w.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...w.headers },
            body,
            signal: AbortSignal.any([signal, AbortSignal.timeout(w.timeout ?? 10_000)]),
          });
          await res.arrayBuffer().catch(() => {});
          if (res.ok) return;
          const err = new Error(`HTTP ${res.status}`);
          // a client error other than timeout / too many requests will not get better by asking again
          if (res.status < 500 && res.status !== 408 && res.status !== 429) throw new AbortError(err);
          throw err;
        },
        {
          retries: w.retries ?? 5,
          factor: 2,
          minTimeout: w.minTimeout ?? 1000,
          maxTimeout: w.maxTimeout ?? 60_000,
          signal,
          onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
            if (retriesLeft > 0 && !signal.aborted) this.log(`alert ${m.violationId} to ${w.url}: attempt ${attemptNumber} failed (${error.message}), retrying`);
          },
        },
      );
    } catch (err) {
      this.log(`alert ${m.violationId} (${m.violationEventType}) to ${w.url} not delivered: ${(err as Error).message}`);
    }
  }

  /** Waits for alerts in flight; those still unacknowledged or waiting to retry after `graceMs` are given up. */
  async close(graceMs = 2000): Promise<void> {
    const timer = setTimeout(() => this.abort.abort(new Error('service closing')), graceMs);
    await Promise.all([...this.pending]);
    clearTimeout(timer);
    this.abort.abort(new Error('service closing'));
  }
}
