#!/usr/bin/env python3
"""Check a private Prosody started by scripts/prosody.sh (Python standard library only).

Usage:  scripts/check-prosody.py [DIR]     (DIR defaults to $PROSODY_DIR, else <repo>/tmp/prosody)

Reads DIR/env and checks, printing one line per check (exit 1 on the first failure):
  1. component port: XEP-0114 handshake for focus.<domain> with sha1(stream id + FOCUS_SECRET);
     a wrong secret is refused
  2. c2s auth.<domain>: STARTTLS offered (required); the certificate validates against CA_FILE
     for auth.<domain>; after TLS SCRAM-SHA-1 and PLAIN are offered; focus logs in with
     SCRAM-SHA-1 and binds; user1 logs in with PLAIN
  3. c2s <domain>: ANONYMOUS offered without TLS; anonymous login + bind over plain c2s;
     STARTTLS offered (optional) and validates for <domain>
  4. MUC: focus creates a room on conference.<domain>, is owner (admin), room is not locked
     (an anonymous user can join right away); focus and jvb join the brewery on internal.auth.<domain>
  5. websocket: ws://127.0.0.1:HTTP_PORT/xmpp-websocket upgrades (101) and offers ANONYMOUS
  6. BOSH: http://127.0.0.1:HTTP_PORT/http-bind creates a session
"""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import sys
import urllib.request
import uuid
import xml.etree.ElementTree as ET

STREAM = "http://etherx.jabber.org/streams"
TLS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
MUC = "http://jabber.org/protocol/muc"
MUC_USER = MUC + "#user"


def load_env(d):
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                line = line[len("export "):]
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v.strip("'")
    return env


class Stream:
    """A minimal XMPP stream over a socket: send text, read top-level elements."""

    def __init__(self, sock):
        self.sock = sock
        self.restart()

    def restart(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.header = None
        self.queue = []

    def send(self, text):
        self.sock.sendall(text.encode())

    def _pump(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.header = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.queue.append(el)

    def read_header(self):
        while self.header is None:
            self._pump()
        return self.header

    def read(self):
        while not self.queue:
            self._pump()
        return self.queue.pop(0)

    def read_until(self, pred):
        while True:
            el = self.read()
            if pred(el):
                return el


def open_stream(s, to, ns="jabber:client"):
    s.restart()
    s.send(f"<?xml version='1.0'?><stream:stream xmlns='{ns}' xmlns:stream='{STREAM}' "
           f"to='{to}' version='1.0'>")
    return s.read_header()


def features(s):
    return s.read_until(lambda e: e.tag == f"{{{STREAM}}}features")


def mechanisms(feats):
    m = feats.find(f"{{{SASL}}}mechanisms")
    return [x.text for x in m] if m is not None else []


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def ok(msg):
    print("ok:", msg)


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return Stream(sock)


def starttls(s, host, ca_file):
    s.send(f"<starttls xmlns='{TLS}'/>")
    r = s.read()
    if r.tag != f"{{{TLS}}}proceed":
        fail(f"starttls on {host}: {r.tag}")
    ctx = ssl.create_default_context(cafile=ca_file)
    s.sock = ctx.wrap_socket(s.sock, server_hostname=host)  # verifies chain + host name
    return s.sock.getpeercert()


def scram_sha1(s, user, password):
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={cnonce}"
    s.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>"
           f"{base64.b64encode(('n,,' + first_bare).encode()).decode()}</auth>")
    r = s.read()
    if r.tag != f"{{{SASL}}}challenge":
        fail(f"SCRAM: expected challenge, got {r.tag}")
    server_first = base64.b64decode(r.text).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    stored_key = hashlib.sha1(client_key).digest()
    final_wo_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_wo_proof}".encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha1).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    s.send(f"<response xmlns='{SASL}'>"
           f"{base64.b64encode((final_wo_proof + ',p=' + base64.b64encode(proof).decode()).encode()).decode()}"
           f"</response>")
    r = s.read()
    if r.tag != f"{{{SASL}}}success":
        fail(f"SCRAM-SHA-1 login of {user} failed: {ET.tostring(r).decode()}")
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    server_sig = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha1).digest()).decode()
    if base64.b64decode(r.text).decode() != "v=" + server_sig:
        fail("SCRAM server signature mismatch")


def plain(s, user, password):
    token = base64.b64encode(("\0" + user + "\0" + password).encode()).decode()
    s.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")
    r = s.read()
    if r.tag != f"{{{SASL}}}success":
        fail(f"PLAIN login of {user} failed")


def bind(s, resource=None):
    res = f"<resource>{resource}</resource>" if resource else ""
    s.send(f"<iq type='set' id='bind1'><bind xmlns='{BIND}'>{res}</bind></iq>")
    r = s.read_until(lambda e: e.get("id") == "bind1")
    jid = r.find(f"{{{BIND}}}bind/{{{BIND}}}jid")
    if r.get("type") != "result" or jid is None:
        fail("bind failed")
    return jid.text


def login(env, user, password, resource=None, mech="SCRAM-SHA-1"):
    dom = "auth." + env["XMPP_DOMAIN"]
    s = connect(int(env["C2S_PORT"]))
    open_stream(s, dom)
    features(s)
    starttls(s, dom, env["CA_FILE"])
    open_stream(s, dom)
    features(s)
    (scram_sha1 if mech == "SCRAM-SHA-1" else plain)(s, user, password)
    open_stream(s, dom)
    features(s)
    return s, bind(s, resource)


def anonymous(env):
    dom = env["XMPP_DOMAIN"]
    s = connect(int(env["C2S_PORT"]))
    open_stream(s, dom)
    f = features(s)
    if "ANONYMOUS" not in mechanisms(f):
        fail(f"ANONYMOUS not offered on plain c2s for {dom}: {mechanisms(f)}")
    s.send(f"<auth xmlns='{SASL}' mechanism='ANONYMOUS'/>")
    if s.read().tag != f"{{{SASL}}}success":
        fail("anonymous login failed")
    open_stream(s, dom)
    features(s)
    return s, bind(s)


def same_jid(a, b):
    # the bare part is case-insensitive (nodeprep/nameprep): Prosody answers for "JvbBrewery@..."
    # from "jvbbrewery@..."
    (ab, _, ar), (bb, _, br) = (a or "").partition("/"), (b or "").partition("/")
    return ab.lower() == bb.lower() and ar == br


def is_presence_from(jid):
    return lambda e: e.tag.endswith("presence") and same_jid(e.get("from"), jid)


def join(s, occupant):
    s.send(f"<presence to='{occupant}'><x xmlns='{MUC}'/></presence>")
    r = s.read_until(is_presence_from(occupant))
    if r.get("type") == "error":
        fail(f"join {occupant}: {ET.tostring(r).decode()}")
    return r.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}item")


def ws_frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read_frame(sock, buf):
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                if len(buf) < 4:
                    n = None
                else:
                    n, off = int.from_bytes(buf[2:4], "big"), 4
            if n is not None and len(buf) >= off + n:
                return buf[off:off + n].decode(), buf[off + n:]
        data = sock.recv(65536)
        if not data:
            raise EOFError("websocket closed")
        buf += data


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    d = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PROSODY_DIR", os.path.join(repo, "tmp/prosody"))
    env = load_env(d)
    dom = env["XMPP_DOMAIN"]

    # 1. component handshake
    for secret, good in ((env["FOCUS_SECRET"], True), ("wrong", False)):
        s = connect(int(env["COMPONENT_PORT"]))
        hdr = open_stream(s, "focus." + dom, ns="jabber:component:accept")
        sid = hdr.get("id")
        if not sid:
            fail("component stream header without id")
        s.send(f"<handshake>{hashlib.sha1((sid + secret).encode()).hexdigest()}</handshake>")
        try:
            r = s.read()
            accepted = r.tag == "{jabber:component:accept}handshake"
        except EOFError:
            accepted = False
        if accepted != good:
            fail(f"component handshake with {'good' if good else 'wrong'} secret: accepted={accepted}")
        s.sock.close()
    ok(f"component focus.{dom}: handshake sha1(id+secret) accepted, wrong secret refused")

    # 2. auth domain: STARTTLS required, SCRAM-SHA-1 + PLAIN after TLS
    adom = "auth." + dom
    s = connect(int(env["C2S_PORT"]))
    open_stream(s, adom)
    f = features(s)
    st = f.find(f"{{{TLS}}}starttls")
    if st is None or st.find(f"{{{TLS}}}required") is None:
        fail(f"{adom}: STARTTLS (required) not offered")
    if mechanisms(f):
        fail(f"{adom}: SASL offered before TLS: {mechanisms(f)}")
    cert = starttls(s, adom, env["CA_FILE"])
    open_stream(s, adom)
    mechs = mechanisms(features(s))
    if "SCRAM-SHA-1" not in mechs or "PLAIN" not in mechs:
        fail(f"{adom}: mechanisms after TLS: {mechs}")
    s.sock.close()
    sans = [v for k, v in cert.get("subjectAltName", ())]
    ok(f"{adom}: STARTTLS required, cert valid for {adom} (SANs {', '.join(sans)}); after TLS: {' '.join(mechs)}")
    focus, focus_jid = login(env, "focus", env["FOCUS_PASSWORD"], "focus")
    ok(f"SCRAM-SHA-1 login + bind: {focus_jid}")
    u1, u1_jid = login(env, "user1", env["USER1_PASSWORD"], mech="PLAIN")
    ok(f"PLAIN login + bind: {u1_jid}")

    # 3. main domain: anonymous over plain c2s, optional STARTTLS valid for the domain
    s = connect(int(env["C2S_PORT"]))
    open_stream(s, dom)
    f = features(s)
    st = f.find(f"{{{TLS}}}starttls")
    if st is None or st.find(f"{{{TLS}}}required") is not None:
        fail(f"{dom}: expected optional STARTTLS")
    starttls(s, dom, env["CA_FILE"])
    s.sock.close()
    anon, anon_jid = anonymous(env)
    ok(f"{dom}: STARTTLS optional and valid; ANONYMOUS over plain c2s: {anon_jid}")

    # 4. MUC
    room = f"check-{uuid.uuid4().hex[:8]}@conference.{dom}"
    item = join(focus, room + "/focus")
    if item is None or item.get("affiliation") != "owner":
        fail(f"focus is not owner of {room}: {item.attrib if item is not None else None}")
    item = join(anon, room + "/anon")
    ok(f"focus created {room} as owner (role {item.get('role') if item is not None else '?'} for anon); "
       "anonymous joined without unlocking")
    brewery = env["BREWERY_JID"]
    join(focus, brewery + "/focus")
    jvb, _ = login(env, "jvb", env["JVB_PASSWORD"], "jvb")
    join(jvb, brewery + "/jvb1")
    r = focus.read_until(is_presence_from(brewery + "/jvb1"))
    item = r.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}item")
    if item is None or not (item.get("jid") or "").startswith("jvb@auth." + dom):
        fail("brewery does not expose real jids")
    ok(f"brewery {brewery}: focus and jvb joined, real jid visible ({item.get('jid')})")
    for x in (focus, u1, anon, jvb):
        x.send("</stream:stream>")
        x.sock.close()

    # 5. websocket
    port = int(env["HTTP_PORT"])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /xmpp-websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Protocol: xmpp\r\nOrigin: https://elsewhere.example\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    status = head.split(b"\r\n")[0].decode()
    if " 101 " not in status:
        fail(f"websocket upgrade: {status}")
    sock.sendall(ws_frame(f"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{dom}' version='1.0'/>"))
    got = ""
    while "mechanisms" not in got:
        text, buf = ws_read_frame(sock, buf)
        got += text
    if "ANONYMOUS" not in got:
        fail(f"websocket: ANONYMOUS not offered: {got}")
    sock.close()
    ok(f"websocket ws://127.0.0.1:{port}/xmpp-websocket: {status}; ANONYMOUS offered")

    # 6. BOSH
    body = (f"<body xmlns='http://jabber.org/protocol/httpbind' to='{dom}' rid='1000' wait='5' hold='1' "
            f"ver='1.6' xml:lang='en' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>")
    req = urllib.request.Request(f"http://127.0.0.1:{port}/http-bind", data=body.encode(),
                                 headers={"Content-Type": "text/xml; charset=utf-8"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        reply = ET.fromstring(resp.read())
    if not reply.get("sid"):
        fail("BOSH: no sid")
    ok(f"BOSH http://127.0.0.1:{port}/http-bind: session {reply.get('sid')}")
    print("all checks passed")


if __name__ == "__main__":
    main()
