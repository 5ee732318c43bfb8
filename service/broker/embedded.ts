// The embedded broker: aedes on a TCP port, plain or mutual TLS, with each client's identity checked in aedes's
// authenticate / authorizePublish / authorizeSubscribe hooks against policy.ts. The collector's own connection is
// in process (a duplex pair, never a port), so no credential exists that a device could steal; so are its alerts
// (publish(), aedes's own, which no authorization hook sees): no client, no policy exception, works in every mode.
//
// Identity:
//   tls      the client certificate, signed by the CA file, is the identity: its CN is the thing name, and the
//            client id must be that name (as an AWS IoT policy on iot:Connect with ${iot:Connection.Thing.ThingName}).
//            A second connection with the same id shows the same certificate, so it replaces the first, as on AWS.
//   'thing'  plain MQTT: the client id is the thing name. Nothing proves it, so a second connection with a client id
//            already connected is refused (the first keeps its session; after a half-open drop the device gets in
//            once its keepalive has run out).
//   'open'   plain MQTT on loopback, for development: any client, any topic, but answers and alerts come from the
//            service only.
// Under tls or 'thing', a client id listed in `operators` is an operator instead of a thing (policy.ts).
//
// The same hooks feed the meter (meter.ts): what each thing (client id) did, for Detect's cloud-side metrics.
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { duplexPair, type Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { Aedes, type Client, type AuthenticateError } from 'aedes';
import { mayPublish, maySubscribe, type Identity } from './policy.ts';
import { Meter } from './meter.ts';

export type Access = 'open' | 'thing';

export interface TlsFiles {
  /** PEM CA that signs the devices' certificates. */
  caFile: string;
  /** PEM server certificate and key. */
  certFile: string;
  keyFile: string;
}

export interface EmbeddedOptions {
  host: string;
  port: number;
  /** Mutual TLS: only clients with a certificate signed by caFile, whose CN is their client id. */
  tls?: TlsFiles;
  /** Without TLS: 'open' (development) or 'thing' (the client id is the thing name). */
  access: Access;
  /** Client ids (under TLS, certificate CNs) that are operators, not things. */
  operators?: readonly string[];
}

export interface Embedded {
  port: number;
  /** The collector's connection, in process. */
  serviceStream(): Duplex;
  /** The collector's client id (random: no device can take it over). */
  serviceClientId: string;
  /** What each thing did on this broker (cloud-side metrics). */
  meter: Meter;
  /** Publishes as the broker itself (QoS 1, to every subscriber the policy let in); resolves once handed to them. */
  publish(topic: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

/** MQTT CONNACK return codes (3.1.1). */
const enum Connack {
  IdentifierRejected = 2,
  NotAuthorized = 5,
}

function refuse(message: string, returnCode: Connack): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: returnCode as number }) as AuthenticateError;
}

export async function embeddedBroker(opts: EmbeddedOptions): Promise<Embedded> {
  const trusted = new WeakSet<object>();
  const identities = new WeakMap<Client, Identity>();
  /** Who holds each client id now (a takeover replaces it before the old client's disconnect arrives). */
  const connected = new Map<string, Client>();
  const serviceClientId = `defender-service-${randomBytes(6).toString('hex')}`;
  const mode: 'tls' | Access = opts.tls ? 'tls' : opts.access;
  const meter = new Meter();
  /** The thing a client is, for the meter (the collector is none). */
  const thingOf = (client: Client | null): string | undefined => {
    const who = client ? identities.get(client) : undefined;
    return who?.role === 'thing' ? who.thing : who?.role === 'open' ? client!.id : undefined;
  };

  const aedes = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      const id = client.id;
      if (trusted.has(client.conn) && id === serviceClientId) {
        identities.set(client, { role: 'service' });
        return done(null, true);
      }
      meter.connectionAttempt(id);
      const refused = (err: AuthenticateError) => {
        meter.authorizationFailure(id);
        done(err, false);
      };
      if (id === serviceClientId) return refused(refuse('the service client id', Connack.IdentifierRejected));
      if (mode === 'open') {
        identities.set(client, { role: 'open' });
        return done(null, true);
      }
      if (mode === 'tls') {
        const cn = (client.conn as TLSSocket).getPeerCertificate?.()?.subject?.CN;
        if (!cn || cn !== id) return refused(refuse(`client id ${JSON.stringify(id)} is not the certificate's CN ${JSON.stringify(cn)}`, Connack.NotAuthorized));
      } else if (connected.has(id)) {
        return refused(refuse(`client id ${JSON.stringify(id)} already connected`, Connack.IdentifierRejected));
      }
      identities.set(client, opts.operators?.includes(id) ? { role: 'operator' } : { role: 'thing', thing: id });
      done(null, true);
    },
    authorizePublish(client, packet, done) {
      const who = client && identities.get(client);
      if (who && mayPublish(who, packet.topic)) return done(null);
      const thing = thingOf(client);
      if (thing !== undefined) meter.authorizationFailure(thing);
      done(new Error(`not allowed to publish on ${packet.topic}`));
    },
    authorizeSubscribe(client, sub, done) {
      const who = identities.get(client);
      if (who && maySubscribe(who, sub.topic)) return done(null, sub);
      const thing = thingOf(client);
      if (thing !== undefined) meter.authorizationFailure(thing);
      done(null, null);
    },
    authorizeForward(client, packet) {
      const thing = thingOf(client);
      if (thing !== undefined) meter.received(thing);
      return packet;
    },
  });
  aedes.on('clientReady', (client) => {
    connected.set(client.id, client);
    const thing = thingOf(client);
    if (thing !== undefined) meter.connected(thing, client, (client.conn as Partial<Socket>).remoteAddress);
  });
  aedes.on('clientDisconnect', (client) => {
    if (connected.get(client.id) === client) connected.delete(client.id);
    const thing = thingOf(client);
    if (thing !== undefined) meter.disconnected(thing, client);
  });
  aedes.on('publish', (packet, client) => {
    const thing = thingOf(client);
    if (thing !== undefined) meter.sent(thing, packet.payload.length);
  });

  const sockets = new Set<Socket>();
  const accept = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.setNoDelay(true); // MQTT is small request/response packets: no Nagle wait on each answer
    aedes.handle(s);
  };
  const server: Server = opts.tls
    ? createTlsServer(
        { ca: readFileSync(opts.tls.caFile), cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile), requestCert: true, rejectUnauthorized: true },
        accept,
      ).on('tlsClientError', () => {}) // a client without a good certificate: its handshake fails, nothing else to do
    : createServer(accept);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => resolve());
    });
  } catch (err) {
    await new Promise<void>((r) => aedes.close(() => r()));
    throw err;
  }
  const pairs = new Set<Duplex>();
  let shut = false;
  return {
    port: (server.address() as AddressInfo).port,
    serviceClientId,
    meter,
    serviceStream() {
      const [ours, theirs] = duplexPair();
      trusted.add(theirs);
      pairs.add(theirs);
      theirs.once('close', () => pairs.delete(theirs));
      aedes.handle(theirs);
      return ours;
    },
    publish(topic, payload) {
      if (shut) return Promise.reject(new Error('broker closed'));
      return new Promise((resolve, reject) =>
        aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
      );
    },
    async close() {
      shut = true;
      await new Promise<void>((r) => aedes.close(() => r()));
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      for (const p of pairs) p.destroy();
      await closed;
    },
  };
}
