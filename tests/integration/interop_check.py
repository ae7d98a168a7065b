#!/usr/bin/env python3
"""interop_check.py - check a Backend Interfaces answer against what a client's decoder requires.

Usage: interop_check.py CLIENT TYPE FILE [KEY=VALUE...]

CLIENT is "chirpstack" (the chirpstack `backend` crate, serde) or "tts" (The Things Stack
pkg/interop, Go encoding/json). TYPE is the answer's MessageType. FILE holds the answer as
sent (one JSON object). Each KEY=VALUE is one more expectation: a top-level field's exact
value ("TransactionID=0"), "Result=CODE", "present=FIELD" or "absent=FIELD".

The rules are written from reading each client's decoder, not copied from it:
- chirpstack: every hex field (Vec<u8> with hex_encode) must decode as hex (either case);
  TransactionID is a u32; MessageType and ResultCode must be variants of its enums; Lifetime is
  an unsigned integer (Option<usize>); a KeyEnvelope is {KEKLabel: string, AESKey: hex};
  AppSKeyAns needs DevEUI and SessionKeyID (its struct has no serde defaults).
- tts: SenderID/ReceiverID/NSIDs are EUI64 (16 hex digits) or NetID (6 hex digits) by the
  message direction; Lifetime is a uint32; a KeyEnvelope is {KEKLabel, AESKey: hex};
  Buffer fields are hex with an optional "0x".
Prints "ok" or the first violation, and exits 0 or 1.
"""
import json
import re
import sys

HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")
CS_RESULTS = {
    "Success", "MICFailed", "JoinReqFailed", "NoRoamingAgreement", "DevRoamingDisallowed",
    "RoamingActDisallowed", "ActivationDisallowed", "UnknownDevEUI", "UnknownDevAddr",
    "UnknownSender", "UnknownReceiver", "UnkownReceiver", "Deferred", "XmitFailed",
    "InvalidFPort", "InvalidProtocolVersion", "StaleDeviceProfile", "MalformedRequest",
    "FrameSizeError", "Other",
}
CS_TYPES = {"JoinReq", "JoinAns", "RejoinReq", "RejoinAns", "AppSKeyReq", "AppSKeyAns",
            "PRStartReq", "PRStartAns", "PRStopReq", "PRStopAns", "HomeNSReq", "HomeNSAns",
            "XmitDataReq", "XmitDataAns"}
ENVELOPES = ("SNwkSIntKey", "FNwkSIntKey", "NwkSEncKey", "NwkSKey", "AppSKey")


class Bad(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Bad(what)


def is_hex(v, nbytes=None):
    if not isinstance(v, str) or not HEX.match(v):
        return False
    digits = v[2:] if v.startswith("0x") else v
    return nbytes is None or len(digits) == 2 * nbytes


def uint(v, bits):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << bits)


def envelope(m, name):
    e = m.get(name)
    if e is None:
        return
    need(isinstance(e, dict), f"{name}: not an object")
    need(isinstance(e.get("KEKLabel", ""), str), f"{name}.KEKLabel: not a string")
    need(is_hex(e.get("AESKey")), f"{name}.AESKey: missing or not hex")


def chirpstack(m, typ):
    need(isinstance(m.get("ProtocolVersion", ""), str), "ProtocolVersion: not a string")
    for f in ("SenderID", "ReceiverID"):
        need(is_hex(m.get(f, "")), f"{f}: not hex (Vec<u8> hex_encode)")
    need(uint(m.get("TransactionID", 0), 32), "TransactionID: not a u32")
    need(m.get("MessageType") in CS_TYPES, "MessageType: not a ChirpStack MessageType")
    r = m.get("Result")
    need(isinstance(r, dict), "Result: missing or not an object")
    need(r.get("ResultCode") in CS_RESULTS, "Result.ResultCode: not a ChirpStack ResultCode")
    need(isinstance(r.get("Description", ""), str), "Result.Description: not a string")
    for f in ("PHYPayload", "SessionKeyID", "DevEUI", "HNetID", "SenderToken",
              "ReceiverToken"):
        if f in m:
            need(is_hex(m[f]), f"{f}: not hex")
    if "Lifetime" in m:
        need(uint(m["Lifetime"], 64), "Lifetime: not an unsigned integer")
    for e in ENVELOPES:
        envelope(m, e)
    if typ == "AppSKeyAns" and r.get("ResultCode") == "Success":
        need("DevEUI" in m and "SessionKeyID" in m, "AppSKeyAns: DevEUI and SessionKeyID required")


def tts(m, typ):
    need(m.get("ProtocolVersion") in ("1.0", "1.1"), "ProtocolVersion: not 1.0 or 1.1")
    need(uint(m.get("TransactionID", 0), 32), "TransactionID: not a uint32")
    need(m.get("MessageType") == typ, f"MessageType: not {typ}")
    # JS -> NS/AS: SenderID is the JoinEUI (EUI64); ReceiverID a NetID (NS) or a string (AS)
    need(is_hex(m.get("SenderID"), 8) and not m["SenderID"].startswith("0x"),
         "SenderID: not an EUI64")
    if typ == "AppSKeyAns":
        need(isinstance(m.get("ReceiverID"), str), "ReceiverID: not a string")
    else:
        need(is_hex(m.get("ReceiverID"), 3), "ReceiverID: not a NetID")
    for f in ("ReceiverNSID", "SenderNSID", "HNSID"):
        if f in m:
            need(is_hex(m[f], 8), f"{f}: not an EUI64")
    r = m.get("Result")
    need(isinstance(r, dict) and isinstance(r.get("ResultCode"), str), "Result: not an object")
    for f in ("PHYPayload", "SessionKeyID", "SenderToken", "ReceiverToken"):
        if f in m:
            need(is_hex(m[f]), f"{f}: not hex (Buffer)")
    if "DevEUI" in m:
        need(is_hex(m["DevEUI"], 8), "DevEUI: not an EUI64")
    if "HNetID" in m:
        need(is_hex(m["HNetID"], 3), "HNetID: not a NetID")
    if "Lifetime" in m:
        need(uint(m["Lifetime"], 32), "Lifetime: not a uint32")
    for e in ENVELOPES:
        envelope(m, e)


def main():
    client, typ, path = sys.argv[1:4]
    try:
        with open(path, encoding="utf-8") as f:
            m = json.loads(f.read())
        need(isinstance(m, dict), "not a JSON object")
        need(m.get("MessageType") == typ, f"MessageType: {m.get('MessageType')!r}, not {typ}")
        {"chirpstack": chirpstack, "tts": tts}[client](m, typ)
        for kv in sys.argv[4:]:
            k, v = kv.split("=", 1)
            if k == "present":
                need(v in m, f"{v}: absent")
            elif k == "absent":
                need(v not in m, f"{v}: present")
            elif k == "Result":
                need(m["Result"]["ResultCode"] == v,
                     f"ResultCode {m['Result']['ResultCode']!r}, not {v}")
            else:
                got = m.get(k)
                need(str(got) == v, f"{k}: {got!r}, not {v!r}")
    except (Bad, ValueError, KeyError) as e:
        print(f"{client} {typ}: {e}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
