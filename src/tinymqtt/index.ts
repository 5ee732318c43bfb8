// tinymqtt: the MQTT 3.1.1 client (issue 3 fills it in).
export var version = "0.1.0";
