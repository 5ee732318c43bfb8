// defender: the Device Defender agent and metrics core (issues 4 and 5 fill it in).
export var version = "0.1.0";
