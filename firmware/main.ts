// The ESP32 application: joins Wi-Fi, sets the clock by SNTP, connects tinymqtt over TLS to AWS IoT with
// the certificates from Storage, and runs the Device Defender agent on that connection.
// Settings come from espruino.config.json (baked in by the build); secrets only from Storage.
//
// Everything that can fail (Wi-Fi, DNS, TLS, the broker) is logged with its reason and retried with
// back-off; nothing here throws out of a callback, so the board never enters a crash loop.
// The MQTT client is global `mqtt`, for the application's own messages on the same connection
// (AWS IoT allows one connection per client id).
import settings from "firmware-settings";

declare var global: any;
declare function digitalWrite(pin: unknown, value: boolean): void;
declare var Modules: { addCached(name: string, source: () => void): void } | undefined;

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
declare var module: any;

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

var wifiDelay = 1000;
var wifiTimer: TimerHandle = null;
var client: any = null;
var started = false;

/** Calls fn after the current back-off, and doubles it (capped). */
function retryWifi(reason: string): void {
  if (wifiTimer) return;
  log(reason + "; retrying Wi-Fi in " + wifiDelay / 1000 + " s");
  wifiTimer = setTimeout(function () {
    wifiTimer = null;
    joinWifi();
  }, wifiDelay);
  wifiDelay = Math.min(wifiDelay * 2, MAX_DELAY);
}

function joinWifi(): void {
  var password = Storage.read(settings.passwordFile);
  try {
    wifi!.connect(settings.ssid, { password: password || "" }, function (err) {
      if (err) return retryWifi("Wi-Fi " + settings.ssid + " failed: " + err);
      wifiDelay = 1000;
      log("Wi-Fi " + settings.ssid + " up");
      try {
        wifi!.setSNTP("pool.ntp.org", 0);
      } catch (e) {
        log("SNTP not set: " + e);
      }
      connectMqtt();
    });
  } catch (e) {
    retryWifi("Wi-Fi " + settings.ssid + " failed: " + e);
  }
}

function onEvent(ev: any): void {
  if (ev.type === defender.METRICS_ACCEPTED) log("report " + ev.reportId + " accepted");
  else if (ev.type === defender.METRICS_REJECTED) log("report " + ev.reportId + " rejected: " + ev.errorCode + " " + ev.errorMessage);
  else log("defender event " + ev.type + (ev.reportId ? " for report " + ev.reportId : ""));
}

function connectMqtt(): void {
  if (client) return; // tinymqtt reconnects by itself once created
  var cert = Storage.read(settings.certFile);
  var key = Storage.read(settings.keyFile);
  var ca = Storage.read(settings.caFile);
  if (!cert || !key || !ca) return log("cannot connect without the device certificate, key and CA");
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
    started = code === defender.SUCCESS;
    log(started ? "Device Defender agent started, a report every " + settings.period + " s" : "agent not started: " + defender.strerror(code));
  });
  client.on("disconnected", function (reason: unknown) {
    status(false);
    log("MQTT disconnected" + (reason ? ": " + reason : "") + "; tinymqtt retries");
  });
  client.on("error", function (err: unknown) {
    log("MQTT error: " + err);
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
    retryWifi("Wi-Fi " + settings.ssid + " lost");
  });
  joinWifi();
}
