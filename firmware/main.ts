// The ESP32 application: loads the two library modules from Storage (issue 6 fills it in).
import settings from "firmware-settings";

var mqtt = require("tinymqtt");
var defender = require("defender");
console.log("espruino-defender: tinymqtt " + mqtt.version + ", defender " + defender.version + ", thing " + settings.thingName);
