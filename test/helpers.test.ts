import test from 'ava';
import { connect as tlsConnect } from 'node:tls';
import { makePki } from './helpers/certs.ts';
import { startMosquitto } from './helpers/mosquitto.ts';

test('mosquitto with TLS accepts a client certificate signed by the test CA and refuses a client without one', async (t) => {
  const pki = makePki();
  const broker = await startMosquitto({ tls: pki });
  t.teardown(() => broker.stop());
  const handshake = (withCert: boolean) =>
    new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: broker.port, ca: pki.ca, ...(withCert ? { cert: pki.clientCert, key: pki.clientKey } : {}) });
      s.once('secureConnect', () => {
        // MQTT CONNECT, client id "t": the broker answers CONNACK only once it has accepted the certificate.
        s.write(Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 30, 0, 1, 0x74]));
      });
      s.once('data', (d) => {
        resolve(d.subarray(0, 4).toString('hex'));
        s.destroy();
      });
      s.once('error', () => resolve('error'));
      s.once('close', () => resolve('closed'));
    });
  t.is(await handshake(true), '20020000');
  t.not(await handshake(false), '20020000');
});
