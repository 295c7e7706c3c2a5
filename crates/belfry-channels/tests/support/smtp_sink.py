#!/usr/bin/env python3
"""A real SMTP server on loopback for belfry's e-mail tests (aiosmtpd).

Each accepted message is written to OUT_DIR as NNN.eml (the raw bytes) and NNN.json (the
envelope and the MIME parts as Python's e-mail parser sees them), both before the server
answers the DATA command, so a client that got its 250 can read them at once.

  smtp_sink.py --dir OUT_DIR [--mode plain|starttls|tls] [--cert PEM --key PEM]
               [--auth USER:PASSWORD] [--data-reply "451 4.3.0 try later"] [--hangup]

--hangup closes each connection right after answering its message, as a server that drops
idle clients soon does. Each record names the client's address and port ("peer"), which tells
the connections apart.

Prints "PORT <n>" on standard output once it listens on 127.0.0.1, then serves until killed
(or until its standard input closes, so that it never outlives the test that started it).
"""

import argparse
import asyncio
import base64
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out_dir, data_reply, hangup):
        self.out_dir = out_dir
        self.data_reply = data_reply
        self.hangup = hangup
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.count += 1
        stem = os.path.join(self.out_dir, "%03d" % self.count)
        with open(stem + ".eml", "wb") as f:
            f.write(envelope.original_content)
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                parts.append({"content_type": part.get_content_type(), "multipart": True})
                continue
            payload = part.get_payload(decode=True) or b""
            parts.append({
                "content_type": part.get_content_type(),
                "multipart": False,
                "filename": part.get_filename(),
                "disposition": part.get_content_disposition(),
                "base64": base64.b64encode(payload).decode("ascii"),
            })
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None)
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": tls,
            "login": login,
            "ehlo": session.host_name,
            "peer": "%s:%d" % tuple(session.peer[:2]),
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "parts": parts,
        }
        tmp = stem + ".json.tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, stem + ".json")
        if self.hangup and transport is not None:
            # After the answer below is written: close() flushes what is buffered first.
            asyncio.get_running_loop().call_soon(transport.close)
        return "250 OK stored"


def authenticator_for(expected):
    user, _, password = expected.partition(":")

    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        # handled=False: aiosmtpd answers a failure with its own 535.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth")
    ap.add_argument("--data-reply")
    ap.add_argument("--hangup", action="store_true")
    args = ap.parse_args()

    ctx = None
    if args.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)

    handler = Sink(args.dir, args.data_reply, args.hangup)
    kwargs = {"hostname": "sink.belfry.test", "timeout": 30}
    if args.mode == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    if args.auth:
        kwargs.update(authenticator=authenticator_for(args.auth), auth_required=True,
                      # Implicit TLS is TLS from the first byte; aiosmtpd only knows STARTTLS.
                      auth_require_tls=(args.mode == "starttls"))

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, loop=loop, **kwargs), "127.0.0.1", 0,
        ssl=ctx if args.mode == "tls" else None)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)

    # Serve until standard input closes (the test dropped its end) or we are killed.
    stdin_closed = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stdin_closed.done() or (
        os.read(sys.stdin.fileno(), 4096) or stdin_closed.set_result(None)))
    await stdin_closed
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
