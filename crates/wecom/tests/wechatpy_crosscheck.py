#!/usr/bin/env python3
"""The wechatpy side of crates/wecom/tests/crypto_crosscheck.rs.

Reads ONE JSON request from stdin, {"op": ..., "cases": [...]}, answers {"version": ..., "results": [...]}
on stdout, one result per case, in order. Each result is either a success object or {"error": "<exception
class name>"}, so the Rust side can also check that tampered inputs are refused by wechatpy.

Ops:
  decrypt          {token, key, receive_id, signature, timestamp, nonce, body}    -> {"plaintext"}
  encrypt          {token, key, receive_id, msg, nonce, timestamp}                -> {"xml", "encrypt", "signature", "timestamp", "nonce"}
  check_signature  {token, key, receive_id, signature, timestamp, nonce, echostr} -> {"plaintext"}
  make_echostr     {token, key, receive_id, plaintext, timestamp, nonce}          -> {"echostr", "signature"}

Exit status 3 (with a message on stderr) when wechatpy is not installed.
"""

import json
import sys

try:
    import wechatpy
    import xmltodict
    from wechatpy.crypto import _get_signature
    from wechatpy.utils import to_text
    from wechatpy.work.crypto import PrpCrypto, WeChatCrypto
except ImportError as exc:  # the Rust test turns this into a failure with the install hint
    sys.stderr.write(
        "wechatpy_crosscheck.py: cannot import wechatpy 2.x (%s).\n"
        "Run: python3 -m pip install -r requirements-dev.txt\n" % exc
    )
    sys.exit(3)


def crypto(case):
    return WeChatCrypto(case["token"], case["key"], case["receive_id"])


def decrypt(case):
    plaintext = crypto(case).decrypt_message(
        case["body"], case["signature"], case["timestamp"], case["nonce"]
    )
    return {"plaintext": plaintext}


def encrypt(case):
    xml = crypto(case).encrypt_message(case["msg"], case["nonce"], case["timestamp"])
    parsed = xmltodict.parse(xml)["xml"]
    return {
        "xml": xml,
        "encrypt": parsed["Encrypt"],
        "signature": parsed["MsgSignature"],
        "timestamp": parsed["TimeStamp"],
        "nonce": parsed["Nonce"],
    }


def check_signature(case):
    plaintext = crypto(case).check_signature(
        case["signature"], case["timestamp"], case["nonce"], case["echostr"]
    )
    return {"plaintext": plaintext}


def make_echostr(case):
    c = crypto(case)
    echostr = to_text(PrpCrypto(c.key).encrypt(case["plaintext"], case["receive_id"]))
    signature = _get_signature(case["token"], case["timestamp"], case["nonce"], echostr)
    return {"echostr": echostr, "signature": signature}


OPS = {
    "decrypt": decrypt,
    "encrypt": encrypt,
    "check_signature": check_signature,
    "make_echostr": make_echostr,
}


def run(op, case):
    try:
        return OPS[op](case)
    except Exception as exc:  # reported per case: expected for the tampered ones
        return {"error": type(exc).__name__}


def main():
    # Bytes in, explicit UTF-8: the locale of the test runner must not matter.
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    op = request["op"]
    if op not in OPS:
        sys.stderr.write("unknown op %r\n" % op)
        sys.exit(2)
    results = [run(op, case) for case in request["cases"]]
    sys.stdout.write(json.dumps({"version": wechatpy.__version__, "results": results}))


if __name__ == "__main__":
    main()
