// The ESP32 application: joins Wi-Fi, sets the clock by SNTP, connects tinymqtt over TLS to AWS IoT with
// the certificates from Storage, and runs the Device Defender agent on that connection.
// Settings come from espruino.config.json (baked in by the build); secrets only from Storage.
//
// Everything that can fail (missing secrets, Wi-Fi, DNS, TLS, the broker) is logged with its reason and
// retried with back-off; nothing here throws out of a callback, so the board never enters a crash loop.
// The MQTT client is global `mqtt`, for the application's own messages on the same connection
// (AWS IoT allows one connection per client id).
import settings from "firmware-settings";

declare var global: any;
declare function digitalWrite(pin: unknown, value: boolean): void;
declare var Modules: { addCached(name: string, source: () => void): void } | undefined;
declare var module: any;

var TAG = "espruino-defender: ";
var MAX_DELAY = 60000;

function log(text: string): void {
  console.log(TAG + text);
}

var Storage = require("Storage");
var defender = require("defender");
var tinymqtt = require("tinymqtt");

// Tracked net and tls before anything opens a socket. On Espruino they also replace the cached
// built-ins, so that application code calling require("net") or require("tls") is tracked too.
var net = defender.track(require("net"));
var tls = defender.track(require("tls"));
if (typeof Modules !== "undefined") {
  global.__tracked = [net, tls];
  Modules.addCached("net", function () {
    module.exports = global.__tracked[0];
  });
  Modules.addCached("tls", function () {
    module.exports = global.__tracked[1];
  });
  delete global.__tracked;
}

var wifi: WifiModule | null = null;
try {
  wifi = require("Wifi");
} catch (e) {
  wifi = null;
}

var led = settings.statusLed ? global[settings.statusLed] : null;
function status(on: boolean): void {
  if (led && typeof digitalWrite === "function") digitalWrite(led, on);
}

var delay = 1000;
var timer: TimerHandle = null;
var client: any = null;
var started = false;

/** Logs why, and calls fn again after the back-off (1 s doubling to 60 s; reset on success). */
function retry(why: string, fn: () => void): void {
  if (timer) return;
  log(why + "; retrying in " + delay / 1000 + " s");
  timer = setTimeout(function () {
    timer = null;
    fn();
  }, delay);
  delay = Math.min(delay * 2, MAX_DELAY);
}

function joinWifi(): void {
  var password = Storage.read(settings.passwordFile);
  try {
    wifi!.connect(settings.ssid, { password: password || "" }, function (err) {
      if (err) return retry("Wi-Fi " + settings.ssid + " failed: " + err, joinWifi);
      delay = 1000;
      log("Wi-Fi " + settings.ssid + " up");
      try {
        wifi!.setSNTP("pool.ntp.org", 0);
      } catch (e) {
        log("SNTP not set: " + e);
      }
      connectMqtt();
    });
  } catch (e) {
    retry("Wi-Fi " + settings.ssid + " failed: " + e, joinWifi);
  }
}

/** The agent's events (README, "Agent API": 1 accepted, 2 rejected, others with a code and message). */
function onEvent(ev: any): void {
  if (ev.type === 1) log("report " + ev.reportId + " accepted");
  else if (ev.type === 2) log("report " + ev.reportId + " rejected: " + ev.code + " " + ev.message);
  else log("defender event " + ev.type + (ev.reportId ? " for report " + ev.reportId : "") + (ev.code ? ": " + ev.code : "") + (ev.message ? " " + ev.message : ""));
}

function connectMqtt(): void {
  if (client) return; // tinymqtt reconnects by itself once created
  var cert = Storage.read(settings.certFile);
  var key = Storage.read(settings.keyFile);
  var ca = Storage.read(settings.caFile);
  if (!cert || !key || !ca) return retry("cannot connect without the device certificate, key and CA (npm run provision)", connectMqtt);
  delay = 1000;
  client = tinymqtt.create(settings.endpoint, {
    port: settings.mqttPort,
    client_id: settings.thingName,
    keep_alive: 60,
    transport: tls,
    cert: cert,
    key: key,
    ca: ca,
    servername: settings.endpoint,
  });
  global.mqtt = client;
  client.on("connected", function () {
    status(true);
    log("MQTT connected to " + settings.endpoint + ":" + settings.mqttPort);
    if (started) return;
    var code = defender.start({
      mqtt: client,
      thingName: settings.thingName,
      callback: onEvent,
      period: settings.period,
      minPeriod: settings.minPeriod,
      format: settings.format,
      longTags: settings.longTags,
      slots: settings.slots,
    });
    started = code === 0; // SUCCESS
    log(started ? "Device Defender agent started, a report every " + settings.period + " s" : "agent not started: " + defender.strerror(code));
  });
  client.on("disconnected", function (reason: unknown) {
    status(false);
    log("MQTT disconnected" + (reason ? ": " + reason : "") + "; tinymqtt retries");
  });
  client.on("error", function (err: any) {
    log("MQTT error: " + (err && err.message ? err.message : err));
  });
  client.connect();
}

log("starting, thing " + settings.thingName + ", endpoint " + settings.endpoint);
status(false);
var secrets = [settings.certFile, settings.keyFile, settings.caFile, settings.passwordFile];
var missing = secrets.filter(function (name) {
  return Storage.read(name) === undefined;
});
log(missing.length ? "missing in Storage: " + missing.join(", ") + " (run npm run provision)" : "found " + secrets.join(", ") + " in Storage");
if (!wifi) {
  log("no Wifi module on this board: cannot reach " + settings.endpoint);
} else {
  wifi.on("disconnected", function () {
    status(false);
    retry("Wi-Fi " + settings.ssid + " lost", joinWifi);
  });
  joinWifi();
}
