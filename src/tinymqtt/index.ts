// tinymqtt: the Storage module "tinymqtt", an MQTT 3.1.1 client for Espruino (QoS 0 and 1, keep-alive,
// reconnect, TLS through the transport). The API is a superset of Espruino's tinyMQTT:
//   create(server, options) -> client: connect() disconnect() publish(topic, message[, qos[, cb]])
//   subscribe(topic[, qos[, cb]]) unsubscribe(topic[, cb]); events connected, disconnected(reason),
//   message({topic, message}), published, error(Error). README "MQTT client" lists the options.
export { create } from "./client";
