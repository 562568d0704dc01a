"""Small HTTP proxies that stand in front of a real OpenSearch in ddb2os's end-to-end tests.

Standard library plus botocore only. Every proxy:

* listens on 127.0.0.1 on a free port (``.url``) and forwards to one upstream ``http://`` URL;
* is a context manager (``with Proxy(...) as p:``), or ``start()`` / ``stop()`` (alias ``close()``);
* serves each client connection in its own thread, HTTP/1.1 keep-alive included, and keeps one
  keep-alive connection upstream per client connection;
* reads request bodies framed by ``Content-Length`` or ``Transfer-Encoding: chunked`` (trailers are
  read and dropped) and answers ``Expect: 100-continue``; the body is forwarded with a
  ``Content-Length`` (never chunked);
* forwards the request's headers as received (``Host`` included, so that proxies chain: for
  example client -> TLSProxy -> SigV4VerifyingProxy -> FaultProxy -> OpenSearch), except the
  hop-by-hop ones, with the body's length as ``Content-Length``;
* passes status, reason, headers (duplicates and order kept) and body back as received, except
  the hop-by-hop headers (``Connection``, ``Keep-Alive``, ``Transfer-Encoding``, ...), and a
  chunked upstream response is re-framed with ``Content-Length``;
* answers ``502`` with a JSON body when the upstream cannot be reached (connection refused or
  reset: OpenSearch stopped);
* on ``stop()``: stops accepting, shuts down every client connection (idle keep-alive ones too),
  interrupts injected delays, closes upstream connections and joins every thread it started:
  nothing is left behind;
* counts ``.requests`` (requests received) and ``.connections`` (client connections accepted),
  keeps ``.log`` (one :class:`Seen` per request) and ``.errors`` (unexpected exceptions in the
  proxy itself: a test can assert it is empty).

The three proxies:

:class:`SigV4VerifyingProxy`
    Recomputes each request's AWS Signature Version 4 with botocore and refuses (403, AWS-like JSON
    body) any request whose signature, credential scope, date, session token or payload hash is
    wrong. Forwards accepted requests; a ``Content-Encoding: gzip`` body (the signature covers the
    compressed bytes) is forwarded decompressed by default.

:class:`TLSProxy`
    Terminates TLS with a certificate for ``localhost`` / ``127.0.0.1`` issued by a test CA made by
    :func:`make_test_ca` (``openssl`` command line), forwards plain HTTP.

:class:`FaultProxy`
    Forwards, or injects faults on request: whole-request error statuses, connection resets before
    or after the upstream saw the request, delays, and ``_bulk`` responses where chosen items fail.
    Items it fails are NOT sent upstream: OpenSearch never sees them (see
    :meth:`FaultProxy.fail_bulk_items`).

Facts measured against OpenSearch 2.19 (integ-test zip, no security plugin), see test_proxies.py:
OpenSearch itself accepts ``Content-Encoding: gzip`` request bodies (Netty decompresses them), so
decompressing in the proxy is a choice (``SigV4VerifyingProxy(decompress=False)`` forwards the
gzip bytes untouched). OpenSearch names a full write queue ``rejected_execution_exception`` (status
429) where Elasticsearch and its AWS domains say ``es_rejected_execution_exception``.
"""
from __future__ import annotations

import collections
import collections.abc
import datetime
import fnmatch
import gzip
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Union

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

__all__ = [
    "Seen", "Response", "SigV4VerifyingProxy", "TLSProxy", "FaultProxy", "make_test_ca",
    "BULK_ERRORS", "STATUS_ERRORS",
]

LOOPBACK = "127.0.0.1"
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect",
})
UPSTREAM_TIMEOUT = 120.0   # seconds for one upstream exchange
IDLE_TIMEOUT = 300.0       # seconds a client connection may sit idle (stop() ends it anyway)
HANDSHAKE_TIMEOUT = 10.0


# ---------------------------------------------------------------------------------------------
# Common machinery
# ---------------------------------------------------------------------------------------------

@dataclass
class Seen:
    """One request as a proxy saw it. ``fault`` names what was injected or refused (None: plain
    forward); ``status`` is what the client got (None: connection reset, no status);
    ``forwarded`` whether the request (or part of a ``_bulk``) reached the upstream."""
    method: str
    target: str
    status: Optional[int] = None
    fault: Optional[str] = None
    forwarded: bool = False
    detail: Optional[str] = None


@dataclass
class Response:
    status: int
    reason: str = ""
    headers: list = field(default_factory=list)   # [(name, value), ...] as received / to send
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def json(self):
        body = self.body
        if (self.header("content-encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)


def _json_response(status: int, obj, extra_headers: Iterable = ()) -> Response:
    body = json.dumps(obj).encode()
    return Response(status, http.client.responses.get(status, ""),
                    [("content-type", "application/json; charset=UTF-8"), *extra_headers], body)


class _Exchange:
    """A request received from the client. The body is read on demand (read_body), so that a
    fault can strike before it is read."""

    def __init__(self, handler: "_Handler") -> None:
        self._h = handler
        self.method: str = handler.command
        self.target: str = handler.path          # raw request target: path + '?' + query, as sent
        self.headers: list = list(handler.headers.items())
        self._body: Optional[bytes] = None
        self.seen = Seen(self.method, self.target)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def read_body(self) -> bytes:
        if self._body is None:
            self._body = self._h._read_body()
        return self._body


def _decode_body(headers: list, body: bytes) -> "tuple[list, bytes]":
    """Undo Content-Encoding gzip/deflate; returns headers without Content-Encoding."""
    enc = next((v for k, v in headers if k.lower() == "content-encoding"), None)
    if not enc or enc.strip().lower() == "identity":
        return headers, body
    for coding in reversed([c.strip().lower() for c in enc.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif coding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        elif coding != "identity":
            raise ValueError(f"unsupported Content-Encoding {enc!r}")
    return [(k, v) for k, v in headers if k.lower() != "content-encoding"], body


class _Abort(Exception):
    """Raised inside a handler to drop the client connection with a TCP reset."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: "_Server"

    # -- connection lifecycle ------------------------------------------------------------------
    def setup(self) -> None:
        self._upstream: Optional[http.client.HTTPConnection] = None
        self._aborted = False
        self._tls: Optional[ssl.SSLSocket] = None
        self.alive = False
        self.rfile = self.wfile = None
        ctx = self.server.ssl_context
        if ctx is not None:
            raw = self.request
            raw.settimeout(HANDSHAKE_TIMEOUT)
            try:
                self._tls = ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            except (OSError, ssl.SSLError) as e:
                self.server.proxy._handshake_failed(self.client_address, e)
                return
            self.server._replace_conn(raw, self._tls)   # raw is detached now: the TLS socket owns the fd
            if self.server.proxy._stopping.is_set():
                return
            try:
                self._tls.do_handshake()
            except (OSError, ssl.SSLError) as e:
                self.server.proxy._handshake_failed(self.client_address, e)
                return
            self.request = self._tls
        if self.server.proxy._stopping.is_set():
            return
        self.alive = True
        super().setup()

    def handle(self) -> None:
        if not self.alive:
            return
        try:
            super().handle()
        except _Abort:
            self._abort()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError, ValueError):
            self.close_connection = True   # client went away, stop() shut the socket, or bad framing

    def finish(self) -> None:
        if self.rfile is not None:
            with _suppress():
                super().finish()
        if self._upstream is not None:
            self._upstream.close()
            self.server._track_upstream(self._upstream, False)
        if self._tls is not None:   # the server only knows the raw (detached) socket: close it here
            if self._aborted:
                with _suppress():
                    self._tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with _suppress():
                self._tls.close()
            self.server._drop_conn(self._tls)

    def _abort(self) -> None:
        """Drop the client connection with a TCP reset (SO_LINGER 0, no FIN first)."""
        self._aborted = True
        self.close_connection = True
        if self._tls is None:
            self.server._aborted.add(self.request)

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (quiet)
        pass

    # -- reading the body ----------------------------------------------------------------------
    def _read_body(self) -> bytes:
        te = [c.strip().lower() for c in ",".join(self.headers.get_all("Transfer-Encoding") or []).split(",")
              if c.strip()]
        if te:
            if te[-1] != "chunked":
                raise ValueError(f"unsupported Transfer-Encoding {te}")
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass   # trailers: dropped
                    break
                parts.append(self._read_exact(size))
                self.rfile.readline(3)  # CRLF after the chunk
            return b"".join(parts)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        return self._read_exact(int(length))

    def _read_exact(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) != n:
            raise ConnectionError(f"client closed after {len(data)} of {n} body bytes")
        return data

    # -- one request ---------------------------------------------------------------------------
    def _dispatch(self) -> None:
        proxy = self.server.proxy
        ex = _Exchange(self)
        proxy._count_request(ex.seen)
        try:
            resp = proxy._handle(ex, self)
        except _Abort:
            ex.seen.status = None
            raise
        except (ConnectionError, TimeoutError):
            raise       # the client went away: handle() closes the connection
        except Exception as e:  # a bug in the proxy or a malformed request: tell the client
            proxy._record_error(f"{ex.method} {ex.target}: {type(e).__name__}: {e}")
            resp = _json_response(502, {"message": f"proxy error: {type(e).__name__}: {e}"})
            self.close_connection = True
        if resp is None:      # the handler already answered (or aborted)
            return
        ex.seen.status = resp.status
        self.send_upstream_response(resp)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def send_upstream_response(self, resp: Response, body_limit: Optional[int] = None) -> None:
        """Write resp to the client. body_limit: write only that many body bytes (a fault)."""
        self.send_response_only(resp.status, resp.reason or None)
        for k, v in resp.headers:
            lk = k.lower()
            if lk in HOP_BY_HOP:
                continue
            if lk == "content-length" and self.command != "HEAD":
                continue   # recomputed below (HEAD: the upstream's, describing the GET body)
            self.send_header(k, v)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        if not no_body:
            self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not no_body:
            body = resp.body if body_limit is None else resp.body[:body_limit]
            if body:
                self.wfile.write(body)
        self.wfile.flush()

    # -- upstream ------------------------------------------------------------------------------
    def forward(self, ex: _Exchange, body: Optional[bytes] = None, headers: Optional[list] = None,
                target: Optional[str] = None) -> Response:
        """Send the request upstream (one keep-alive connection per client connection) and read
        the whole response. Connection failures become a 502 Response."""
        proxy = self.server.proxy
        body = ex.read_body() if body is None else body
        headers = ex.headers if headers is None else headers
        # The client's Host goes upstream unchanged, so that proxies can be chained in front of
        # the SigV4 verifier (the signature covers Host).
        out = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
        has_host = any(k.lower() == "host" for k, _ in out)
        if body or ex.method in ("POST", "PUT", "PATCH"):
            out.append(("Content-Length", str(len(body))))
        target = ex.target if target is None else target
        for attempt in (0, 1):
            reused = self._upstream is not None and self._upstream.sock is not None
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                            timeout=UPSTREAM_TIMEOUT)
                self.server._track_upstream(self._upstream, True)
            conn = self._upstream
            try:
                conn.putrequest(ex.method, target, skip_host=has_host, skip_accept_encoding=True)
                for k, v in out:
                    conn.putheader(k, v)
                conn.endheaders(body if body else None)
                r = conn.getresponse()
                data = r.read()
                resp = Response(r.status, r.reason, list(r.getheaders()), data)
                if r.will_close:
                    conn.close()
                proxy._count_forward()
                ex.seen.forwarded = True
                return resp
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                if attempt == 0 and reused and not proxy._stopping.is_set():
                    continue   # a stale keep-alive connection: once more on a fresh one
                return _json_response(502, {"message": f"upstream {proxy.upstream}: {type(e).__name__}: {e}"})
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                return _json_response(502, {"message": f"upstream {proxy.upstream}: {type(e).__name__}: {e}"})
        raise AssertionError("unreachable")


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        return et is not None and issubclass(et, Exception)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = False

    def __init__(self, proxy: "_ProxyBase", ssl_context: Optional[ssl.SSLContext]) -> None:
        self.proxy = proxy
        self.ssl_context = ssl_context
        self._conns: set = set()
        self._upstreams: set = set()
        self._conns_lock = threading.Lock()
        self._aborted: set = set()
        super().__init__((LOOPBACK, 0), _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)      # no getfqdn(): no name lookup
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        sock, addr = super().get_request()
        with self._conns_lock:
            self._conns.add(sock)
        self.proxy._count_connection()
        return sock, addr

    def _replace_conn(self, old, new) -> None:
        with self._conns_lock:
            self._conns.discard(old)
            self._conns.add(new)

    def _track_upstream(self, conn: http.client.HTTPConnection, add: bool) -> None:
        with self._conns_lock:
            (self._upstreams.add if add else self._upstreams.discard)(conn)

    def _drop_conn(self, sock) -> None:
        with self._conns_lock:
            self._conns.discard(sock)

    def shutdown_request(self, request) -> None:
        if request in self._aborted:
            self._aborted.discard(request)
            with _suppress():
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_request(request)   # RST, no FIN first
        else:
            super().shutdown_request(request)
        self._drop_conn(request)

    def handle_error(self, request, client_address) -> None:
        import traceback
        self.proxy._record_error(traceback.format_exc())

    def shutdown_connections(self) -> None:
        with self._conns_lock:
            # upstream sockets too: a handler waiting on a slow (or stopped) upstream returns now
            conns = list(self._conns) + [c.sock for c in self._upstreams if c.sock is not None]
        for s in conns:
            with _suppress():
                # socket.socket's own shutdown, also for an SSLSocket (whose override would drop
                # its SSL object under a thread still reading): the blocked read just ends.
                socket.socket.shutdown(s, socket.SHUT_RDWR)


class _ProxyBase:
    """What the three proxies share: life cycle, counters, forwarding."""

    scheme = "http"

    def __init__(self, upstream: str) -> None:
        u = urllib.parse.urlsplit(upstream.rstrip("/"))
        if u.scheme != "http" or not u.hostname or not u.port:
            raise ValueError(f"upstream must be http://HOST:PORT, got {upstream!r}")
        if u.path not in ("", "/"):
            raise ValueError(f"upstream must have no path, got {upstream!r}")
        self.upstream = f"http://{u.hostname}:{u.port}"
        self.upstream_host, self.upstream_port = u.hostname, u.port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.requests = 0
        self.forwarded = 0
        self.connections = 0
        self.log: "list[Seen]" = []
        self.errors: "list[str]" = []

    # -- life cycle ----------------------------------------------------------------------------
    def _ssl_context(self) -> Optional[ssl.SSLContext]:
        return None

    def start(self):
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self, self._ssl_context())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every client connection, join every thread. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()               # serve_forever returns: no more accepts
        self._thread.join()
        server.shutdown_connections()   # idle keep-alive connections and blocked reads end now
        server.server_close()           # closes the listening socket, joins the handler threads
        self._thread = None

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("proxy not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    # -- counters ------------------------------------------------------------------------------
    def _count_request(self, seen: Seen) -> None:
        with self._lock:
            self.requests += 1
            self.log.append(seen)

    def _count_forward(self) -> None:
        with self._lock:
            self.forwarded += 1

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _record_error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def _handshake_failed(self, addr, exc) -> None:
        pass

    # -- the request ---------------------------------------------------------------------------
    def _handle(self, ex: _Exchange, h: _Handler) -> Optional[Response]:
        return h.forward(ex)


# ---------------------------------------------------------------------------------------------
# SigV4
# ---------------------------------------------------------------------------------------------

class _SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4 with one change: the headers to sign are exactly the request's headers
    (the verifier builds the request from the client's SignedHeaders list, which may include
    headers botocore itself would never sign, such as User-Agent)."""

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            header_map[name.lower()] = value
        return header_map


MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation "
            "for details.")
_AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class _Reject(Exception):
    def __init__(self, message: str, detail: Optional[str] = None, error_type: str = "InvalidSignatureException"):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.error_type = error_type


def _canonical_query(query: str) -> str:
    """The query as AWS canonicalizes it: every name and value decoded, then encoded with
    RFC 3986 unreserved characters left alone ('+' is a literal plus, not a space)."""
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        if part == "":
            continue
        k, _, v = part.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(k), safe="-_.~"),
                      urllib.parse.quote(urllib.parse.unquote(v), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in pairs)


class SigV4VerifyingProxy(_ProxyBase):
    """Verifies AWS Signature Version 4 on every request, like an Amazon OpenSearch Service domain
    (``service="es"``) or an OpenSearch Serverless collection (``service="aoss"``), then forwards.

    ``SigV4VerifyingProxy(upstream, region, service, credentials, *, max_skew=300, decompress=True)``

    ``credentials``: ``{"access_key": ..., "secret_key": ..., "session_token": ... or None}`` (or
    a botocore Credentials). With a session token, every request must carry it in a *signed*
    ``X-Amz-Security-Token``; without one, a request carrying a token is refused.

    A request is refused with 403 and ``{"message": ...}`` (``.rejected``, reason appended to
    ``.rejections`` as ``(method, target, message)``; a signature mismatch also records botocore's
    canonical request and string to sign in ``.rejection_details``) when:

    * there is no ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
      Signature=...`` header;
    * ``X-Amz-Date`` is missing, unparsable, not signed, or more than ``max_skew`` seconds from now
      (``Signature expired`` / ``Signature not yet current``);
    * the credential scope is not ``<access key>/<X-Amz-Date's day>/<region>/<service>/aws4_request``;
    * ``host`` is not signed, or a signed header is absent;
    * the session token is missing, different or unsigned;
    * ``x-amz-content-sha256`` is present (required and signed for ``aoss``) and is not the SHA-256
      of the body bytes as sent (compressed, if compressed);
    * for ``aoss``: ``content-length`` is among the signed headers (the rule the brief set for the
      serverless variant; ``aoss_allow_signed_content_length=True`` lifts it);
    * the signature differs from botocore's, computed on the method, the path as received (botocore
      normalizes and re-encodes it, as AWS does for these services), the query canonicalized as AWS
      does (decoded, re-encoded, sorted), the signed headers with their received values, the
      received body bytes, and the request's ``X-Amz-Date`` as the signing time.

    Accepted requests (``.accepted``) are forwarded with their headers; a ``Content-Encoding:
    gzip`` (or deflate) body is forwarded decompressed, without that header, unless
    ``decompress=False`` (OpenSearch 2.x accepts gzip bodies itself).
    """

    def __init__(self, upstream: str, region: str, service: str, credentials, *, max_skew: float = 300.0,
                 decompress: bool = True, aoss_allow_signed_content_length: bool = False) -> None:
        super().__init__(upstream)
        if service not in ("es", "aoss"):
            raise ValueError(f"service must be 'es' or 'aoss', not {service!r}")
        if isinstance(credentials, dict):
            credentials = Credentials(credentials["access_key"], credentials["secret_key"],
                                      credentials.get("session_token") or credentials.get("token"))
        self.credentials = Credentials(credentials.access_key, credentials.secret_key, credentials.token)
        self.region = region
        self.service = service
        self.max_skew = float(max_skew)
        self.decompress = decompress
        self.aoss_allow_signed_content_length = aoss_allow_signed_content_length
        self.accepted = 0
        self.rejected = 0
        self.rejections: "list[tuple[str, str, str]]" = []
        self.rejection_details: "list[str]" = []

    def reset_counters(self) -> None:
        with self._lock:
            self.accepted = self.rejected = 0
            self.rejections.clear()
            self.rejection_details.clear()

    # -- verification --------------------------------------------------------------------------
    def verify(self, method: str, target: str, headers: list, body: bytes, now: Optional[float] = None) -> None:
        """Raise _Reject unless the request is correctly signed. Public for unit use."""
        def hdr(name):
            vals = [v for k, v in headers if k.lower() == name]
            return vals

        auth = hdr("authorization")
        if not auth:
            raise _Reject("Missing Authentication Token", error_type="MissingAuthenticationTokenException")
        if len(auth) > 1:
            raise _Reject("more than one Authorization header", error_type="IncompleteSignatureException")
        m = _AUTH_RE.match(auth[0].strip())
        if not m:
            raise _Reject(f"Authorization header is not AWS4-HMAC-SHA256: {auth[0][:40]!r}",
                          error_type="IncompleteSignatureException")
        params = {}
        for part in m.group(1).split(","):
            k, _, v = part.strip().partition("=")
            params[k.strip()] = v.strip()
        missing = [p for p in ("Credential", "SignedHeaders", "Signature") if not params.get(p)]
        if missing:
            raise _Reject(" ".join(f"Authorization header requires '{p}' parameter." for p in missing),
                          error_type="IncompleteSignatureException")
        signed = params["SignedHeaders"].split(";")
        if any(s != s.strip().lower() or not s for s in signed):
            raise _Reject(f"SignedHeaders is not a list of lower-case names: {params['SignedHeaders']!r}",
                          error_type="IncompleteSignatureException")

        amz_date = hdr("x-amz-date")
        if len(amz_date) != 1:
            raise _Reject("Authorization header requires existence of exactly one 'X-Amz-Date' header.",
                          error_type="IncompleteSignatureException")
        amz_date = amz_date[0].strip()
        try:
            when = datetime.datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise _Reject(f"X-Amz-Date {amz_date!r} is not in the form YYYYMMDD'T'HHMMSS'Z'",
                          error_type="IncompleteSignatureException") from None
        if "x-amz-date" not in signed:
            raise _Reject("'x-amz-date' must be a signed header")
        now_dt = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.timezone.utc)
        skew = (when - now_dt).total_seconds()
        mins = int(self.max_skew // 60)
        if skew < -self.max_skew:
            limit = (now_dt - datetime.timedelta(seconds=self.max_skew)).strftime(_AMZ_DATE)
            raise _Reject(f"Signature expired: {amz_date} is now earlier than {limit} "
                          f"({now_dt.strftime(_AMZ_DATE)} - {mins} min.)")
        if skew > self.max_skew:
            limit = (now_dt + datetime.timedelta(seconds=self.max_skew)).strftime(_AMZ_DATE)
            raise _Reject(f"Signature not yet current: {amz_date} is still later than {limit} "
                          f"({now_dt.strftime(_AMZ_DATE)} + {mins} min.)")

        scope = params["Credential"].split("/")
        if len(scope) != 5:
            raise _Reject(f"Credential {params['Credential']!r} is not AKID/date/region/service/aws4_request",
                          error_type="IncompleteSignatureException")
        akid, day, region, service, term = scope
        if akid != self.credentials.access_key:
            raise _Reject("The security token included in the request is invalid.",
                          detail=f"unknown access key {akid!r}", error_type="UnrecognizedClientException")
        if day != amz_date[:8]:
            raise _Reject(f"Credential should be scoped to a valid date ({amz_date[:8]}), not {day!r}.")
        if region != self.region:
            raise _Reject(f"Credential should be scoped to a valid region, not '{region}'.")
        if service != self.service:
            raise _Reject(f"Credential should be scoped to correct service: '{self.service}'.")
        if term != "aws4_request":
            raise _Reject("Credential should be scoped with a valid terminator: 'aws4_request', "
                          f"not '{term}'.")
        if "host" not in signed:
            raise _Reject("'Host' must be a signed header")

        token = hdr("x-amz-security-token")
        if self.credentials.token:
            if not token:
                raise _Reject("The security token included in the request is invalid.",
                              detail="X-Amz-Security-Token missing", error_type="UnrecognizedClientException")
            if token[0] != self.credentials.token:
                raise _Reject("The security token included in the request is invalid.",
                              detail="X-Amz-Security-Token differs", error_type="UnrecognizedClientException")
            if "x-amz-security-token" not in signed:
                raise _Reject("'X-Amz-Security-Token' must be a signed header")
        elif token:
            raise _Reject("The security token included in the request is invalid.",
                          detail="a session token was sent, none is configured",
                          error_type="UnrecognizedClientException")

        content_sha = hdr("x-amz-content-sha256")
        if self.service == "aoss":
            if not content_sha:
                raise _Reject("x-amz-content-sha256 header is required for aoss")
            if "x-amz-content-sha256" not in signed:
                raise _Reject("'x-amz-content-sha256' must be a signed header for aoss")
            if "content-length" in signed and not self.aoss_allow_signed_content_length:
                raise _Reject("'content-length' must not be a signed header for aoss")
        if content_sha:
            actual = hashlib.sha256(body).hexdigest()
            if content_sha[0].strip() != actual:
                raise _Reject("The provided 'x-amz-content-sha256' header does not match what was computed.",
                              detail=f"header {content_sha[0]!r}, body {actual}")

        present = {k.lower() for k, _ in headers}
        absent = [s for s in signed if s not in present]
        if absent:
            raise _Reject(MISMATCH, detail=f"signed headers absent from the request: {absent}")

        path, _, query = target.partition("?")
        if not path.startswith("/"):
            raise _Reject(f"request target {target!r} is not origin-form", error_type="IncompleteSignatureException")
        host = hdr("host")[0].strip()
        url = f"http://{host}{path}" + (f"?{_canonical_query(query)}" if query else "")
        req = AWSRequest(method=method, url=url, data=body)
        for k, v in headers:
            if k.lower() in signed:
                req.headers[k] = v
        req.context["timestamp"] = amz_date
        signer = _SignedHeadersOnly(self.credentials, self.service, self.region)
        canonical = signer.canonical_request(req)
        sts = signer.string_to_sign(req, canonical)
        expected = signer.signature(sts, req)
        if not hmac.compare_digest(expected, params["Signature"]):
            raise _Reject(MISMATCH, detail=f"The Canonical String for this request should have been\n'{canonical}'\n\n"
                                           f"The String-to-Sign should have been\n'{sts}'")

    def _handle(self, ex: _Exchange, h: _Handler) -> Optional[Response]:
        body = ex.read_body()
        try:
            self.verify(ex.method, ex.target, ex.headers, body)
        except _Reject as r:
            # A mismatch's detail (canonical request, string to sign) goes to the client, as AWS
            # does, and to .rejection_details; other details (which token, which hash) only to
            # the proxy's records.
            mismatch = r.message == MISMATCH
            reason = r.message if mismatch or not r.detail else f"{r.message} ({r.detail})"
            message = f"{r.message}\n\n{r.detail}" if mismatch and r.detail else r.message
            with self._lock:
                self.rejected += 1
                self.rejections.append((ex.method, ex.target, reason))
                if r.detail:
                    self.rejection_details.append(r.detail)
            ex.seen.fault = "rejected"
            ex.seen.detail = reason
            return _json_response(403, {"message": message}, [("x-amzn-ErrorType", r.error_type)])
        with self._lock:
            self.accepted += 1
        headers = ex.headers
        if self.decompress:
            try:
                headers, body = _decode_body(headers, body)
            except (OSError, ValueError, EOFError, zlib.error) as e:
                return _json_response(400, {"message": f"cannot decompress the request body: {e}"})
        return h.forward(ex, body=body, headers=headers)


# ---------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------

def make_test_ca(directory: Union[str, os.PathLike], days: int = 30) -> "tuple[str, str, str]":
    """Create a test CA and a server certificate it issued for ``DNS:localhost, IP:127.0.0.1``,
    with the ``openssl`` command line (EC P-256 keys: fast). Returns ``(ca_file, cert_file,
    key_file)`` (PEM paths as strings) in ``directory`` (created if missing). The CA key stays in
    the directory as ``ca.key``."""
    d = os.fspath(directory)
    os.makedirs(d, exist_ok=True)
    p = lambda name: os.path.join(d, name)  # noqa: E731
    ext = p("server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid, issuer\n")

    def run(*args: str) -> None:
        proc = subprocess.run(["openssl", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}")

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", str(days),
        "-subj", "/O=ddb2os tests/CN=ddb2os test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash")
    run("req", "-new", *ec, "-keyout", p("server.key"), "-out", p("server.csr"),
        "-subj", "/O=ddb2os tests/CN=localhost")
    serial = "0x" + os.urandom(12).hex()
    run("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-set_serial", serial, "-days", str(days), "-sha256", "-extfile", ext, "-out", p("server.pem"))
    return p("ca.pem"), p("server.pem"), p("server.key")


class TLSProxy(_ProxyBase):
    """HTTPS on 127.0.0.1 in front of a plain-HTTP upstream.

    ``TLSProxy(upstream, certs)``: ``certs`` is :func:`make_test_ca`'s ``(ca_file, cert_file,
    key_file)`` (or ``{"cert_file":..., "key_file":..., "ca_file":...}``). ``.url`` is
    ``https://127.0.0.1:PORT``, ``.url_localhost`` ``https://localhost:PORT`` (the certificate
    names both); ``.ca_file`` the CA a client must trust. Failed handshakes (such as a client that
    does not trust the CA and sends an ``unknown ca`` alert) are counted in
    ``.handshake_failures`` and described in ``.handshake_errors``; the proxy keeps serving."""

    scheme = "https"

    def __init__(self, upstream: str, certs) -> None:
        super().__init__(upstream)
        if isinstance(certs, dict):
            self.ca_file, self.cert_file, self.key_file = certs.get("ca_file"), certs["cert_file"], certs["key_file"]
        else:
            self.ca_file, self.cert_file, self.key_file = certs
        self.handshake_failures = 0
        self.handshake_errors: "list[str]" = []

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    @property
    def url_localhost(self) -> str:
        return f"https://localhost:{self.port}"

    def _handshake_failed(self, addr, exc) -> None:
        with self._lock:
            self.handshake_failures += 1
            self.handshake_errors.append(f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------

# Per-item bulk errors: status, type, reason (as OpenSearch 2.x / Elasticsearch write them).
BULK_ERRORS = {
    # What OpenSearch 2.x really answers when the write thread pool queue is full.
    "429": (429, "rejected_execution_exception",
            "rejected execution of coordinating operation [shard_detail=[{index}][0][P], "
            "shard_coordinating_and_primary_bytes=0, shard_operation_bytes=0, shard_max_coordinating_and_primary_bytes=0] "
            "(injected by FaultProxy)"),
    "rejected_execution_exception": (429, "rejected_execution_exception",
                                     "rejected execution of primary operation (injected by FaultProxy)"),
    # Elasticsearch's (and Amazon OpenSearch Service Elasticsearch domains') name for the same.
    "es_rejected_execution_exception": (429, "es_rejected_execution_exception",
                                        "rejected execution of org.elasticsearch.transport.TransportService$7@1 "
                                        "on EsThreadPoolExecutor[name = node/write, queue capacity = 10000] "
                                        "(injected by FaultProxy)"),
    "mapper_parsing_exception": (400, "mapper_parsing_exception",
                                 "failed to parse field [field] of type [long] in document with id '{id}'. "
                                 "Preview of field's value: 'not a number' (injected by FaultProxy)"),
    "illegal_argument_exception": (400, "illegal_argument_exception",
                                   "injected by FaultProxy"),
    "503": (503, "unavailable_shards_exception",
            "[{index}][0] primary shard is not active Timeout: [1m] (injected by FaultProxy)"),
    "500": (500, "exception", "injected by FaultProxy"),
    "version_conflict": (409, "version_conflict_engine_exception",
                         "[{id}]: version conflict, current version [9] is higher or equal to the one provided "
                         "[1] (injected by FaultProxy)"),
}

# Whole-request error bodies by status (OpenSearch's error shape).
STATUS_ERRORS = {
    429: ("rejected_execution_exception", "rejected execution (injected by FaultProxy)"),
    500: ("exception", "internal error (injected by FaultProxy)"),
    502: ("bad_gateway", "bad gateway (injected by FaultProxy)"),
    503: ("unavailable_shards_exception", "service unavailable (injected by FaultProxy)"),
    504: ("gateway_timeout", "gateway timeout (injected by FaultProxy)"),
}


def _bulk_error(error) -> "tuple[int, str, str]":
    if isinstance(error, str):
        if error not in BULK_ERRORS:
            raise ValueError(f"unknown bulk error {error!r}; known: {sorted(BULK_ERRORS)}")
        return BULK_ERRORS[error]
    if isinstance(error, dict):
        return int(error["status"]), error["type"], error.get("reason", "injected by FaultProxy")
    status, etype, *reason = error
    return int(status), etype, (reason[0] if reason else "injected by FaultProxy")


Selector = Union[Iterable[Union[int, str]], Callable[[int, dict], bool]]


@dataclass
class _Rule:
    kind: str                 # status | reset | delay | bulk
    remaining: int
    path: Optional["re.Pattern"]
    method: Optional[str]
    params: dict

    def matches(self, ex: _Exchange) -> bool:
        if self.remaining <= 0:
            return False
        if self.method and ex.method != self.method.upper():
            return False
        return self.path is None or self.path.search(ex.target) is not None


def _filter_path(obj, spec: str):
    """A small filter_path (dotted names, '*' wildcards, arrays transparent; no '**' or '-'
    exclusions): the parts of obj named by spec; None when nothing is left (OpenSearch then
    drops the key)."""
    patterns = [p.split(".") for p in spec.split(",") if p]

    def walk(node, pats):
        if any(len(p) == 0 for p in pats):
            return node
        if isinstance(node, list):
            out = [walk(x, pats) for x in node]
            out = [x for x in out if x is not None]
            return out or None
        if not isinstance(node, dict):
            return None
        out = {}
        for k, v in node.items():
            sub = [p[1:] for p in pats if p and fnmatch.fnmatchcase(k, p[0])]
            if sub:
                r = walk(v, sub)
                if r is not None:
                    out[k] = r
        return out or None

    return walk(obj, patterns) or {}


class FaultProxy(_ProxyBase):
    """Forwards, and injects faults when told to. Rules are queued; each request takes the first
    rule (in the order they were added) that matches it and still has a count left; a request
    matching no rule is forwarded as is. ``path`` is a regular expression searched in the request
    target (path and query as sent), ``method`` an HTTP method; both optional.

    A ``_bulk`` rule only counts (and only stops the search for a rule) for a bulk that holds one
    of its chosen items.

    Faults (each returns self, so calls chain):

    * :meth:`fail_next` — answer ``status`` without forwarding.
    * :meth:`reset_next` — TCP reset. ``when="request"``: after the request headers, before the
      body is read; nothing reaches the upstream. ``when="response"``: the request IS forwarded
      (OpenSearch applied it), then the client gets the status line, headers and half the body,
      then a reset.
    * :meth:`delay_next` — hold the response ``seconds`` after the upstream answered (OpenSearch
      applied it already; a client timing out must not assume otherwise), or before forwarding
      with ``before=True``. stop() cuts a delay short.
    * :meth:`fail_bulk_items` — make chosen items of a ``_bulk`` fail.

    Counters: ``.requests`` (seen), ``.forwarded`` (sent upstream), ``.injected`` (a Counter by
    fault kind: ``status``, ``reset_request``, ``reset_response``, ``delay``, ``bulk_items``),
    ``.bulk_items_failed`` and ``.bulk_items_forwarded``, ``.bulk_log`` (one dict per rewritten
    bulk), ``.log`` (one :class:`Seen` per request). :meth:`pending` tells how many faults are
    still queued, :meth:`clear` drops them.
    """

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._rules: "list[_Rule]" = []
        self.injected: collections.Counter = collections.Counter()
        self.bulk_items_failed = 0
        self.bulk_items_forwarded = 0
        self.bulk_log: "list[dict]" = []

    # -- configuring faults --------------------------------------------------------------------
    def _add(self, kind: str, n: int, path, method, **params) -> "FaultProxy":
        if n < 1:
            raise ValueError("n must be at least 1")
        rx = re.compile(path) if isinstance(path, str) else path
        with self._lock:
            self._rules.append(_Rule(kind, n, rx, method, params))
        return self

    def fail_next(self, n: int = 1, status: int = 503, *, path=None, method=None,
                  body: Union[bytes, dict, None] = None, headers: Iterable = (),
                  retry_after: Optional[Union[int, str]] = None) -> "FaultProxy":
        """The next ``n`` matching requests get ``status`` (429, 500, 503, ...) with an
        OpenSearch-shaped JSON error body (or ``body``), without reaching the upstream."""
        return self._add("status", n, path, method, status=status, body=body, headers=list(headers),
                         retry_after=retry_after)

    def reset_next(self, n: int = 1, when: str = "request", *, path=None, method=None) -> "FaultProxy":
        if when not in ("request", "response"):
            raise ValueError("when is 'request' or 'response'")
        return self._add("reset", n, path, method, when=when)

    def delay_next(self, n: int = 1, seconds: float = 1.0, *, before: bool = False, path=None,
                   method=None) -> "FaultProxy":
        return self._add("delay", n, path, method, seconds=float(seconds), before=before)

    def fail_bulk_items(self, items: Selector, error: Union[str, dict, tuple] = "429", n: int = 1, *,
                        path=r"(^|/)_bulk(\?|$)", method=None) -> "FaultProxy":
        """Make chosen items of the next ``n`` ``_bulk`` requests that contain any of them fail.

        ``items``: 0-based positions (int) and/or document ``_id``s (str) — ids are what survives
        a retry, since the retried bulk only holds the failed items —, or a mapping from those to
        an error (one error per item), or a callable ``(position, action) -> bool`` where
        ``action`` is ``{"op": "index", "meta": {...}, "source": bytes or None}``.

        ``error`` (for the items without their own): a :data:`BULK_ERRORS` name (``"429"``,
        ``"es_rejected_execution_exception"``, ``"mapper_parsing_exception"``, ``"503"``, ...), or
        ``{"status":..., "type":..., "reason":...}``, or ``(status, type, reason)``.

        What OpenSearch gets: the bulk WITHOUT the failed items' action and source lines (the
        others are forwarded byte for byte, with the same query string). So a failed item is
        really not indexed, as with a real rejection. If every item fails, nothing is forwarded
        and the proxy answers alone. The response is OpenSearch's, with a synthetic error item
        spliced in at each failed position, ``"errors": true``, re-serialized (uncompressed) and
        then cut down by the request's ``filter_path`` if it had one (forwarded without it).
        """
        default = _bulk_error(error)
        if callable(items) and not isinstance(items, collections.abc.Mapping):
            pred = items
            select = lambda pos, action: default if pred(pos, action) else None  # noqa: E731
        else:
            if isinstance(items, collections.abc.Mapping):
                chosen = {k: _bulk_error(v) for k, v in items.items()}
            else:
                chosen = {k: default for k in items}

            def select(pos, action):
                if pos in chosen:
                    return chosen[pos]
                doc_id = action["meta"].get("_id")
                return chosen.get(doc_id) if isinstance(doc_id, str) else None
        return self._add("bulk", n, path, method, select=select)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> int:
        """Injections still queued (sum of the rules' remaining counts)."""
        with self._lock:
            return sum(r.remaining for r in self._rules)

    def _matching(self, ex: _Exchange) -> "list[_Rule]":
        with self._lock:
            return [r for r in self._rules if r.matches(ex)]

    def _inject(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    # -- the request ---------------------------------------------------------------------------
    def _handle(self, ex: _Exchange, h: _Handler) -> Optional[Response]:
        for rule in self._matching(ex):
            if rule.kind == "bulk":
                resp = self._bulk(ex, h, rule)    # None: no chosen item in this bulk
                if resp is not None:
                    return resp
                continue
            with self._lock:
                if rule.remaining <= 0:           # another connection took the last one
                    continue
                rule.remaining -= 1
            return self._apply(rule, ex, h)
        return h.forward(ex)

    def _apply(self, rule: _Rule, ex: _Exchange, h: _Handler) -> Optional[Response]:
        p = rule.params
        if rule.kind == "status":
            self._inject("status")
            ex.seen.fault = f"status {p['status']}"
            ex.read_body()
            body = p["body"]
            extra = list(p["headers"])
            if p["retry_after"] is not None:
                extra.append(("Retry-After", str(p["retry_after"])))
            if isinstance(body, (bytes, str)):
                body = body.encode() if isinstance(body, str) else body
                return Response(p["status"], http.client.responses.get(p["status"], ""),
                                [("content-type", "application/json; charset=UTF-8"), *extra], body)
            if body is None:
                etype, reason = STATUS_ERRORS.get(p["status"], ("injected_fault", "injected by FaultProxy"))
                body = {"error": {"root_cause": [{"type": etype, "reason": reason}], "type": etype,
                                  "reason": reason}, "status": p["status"]}
            return _json_response(p["status"], body, extra)
        if rule.kind == "reset":
            if p["when"] == "request":
                self._inject("reset_request")
                ex.seen.fault = "reset before the request was read"
                raise _Abort()
            resp = h.forward(ex)
            self._inject("reset_response")
            ex.seen.fault = "reset in the middle of the response"
            ex.seen.status = resp.status
            with _suppress():
                if len(resp.body) >= 2 and ex.method != "HEAD":
                    h.send_upstream_response(resp, body_limit=len(resp.body) // 2)
                else:   # no body to cut: cut the head instead
                    h.wfile.write(f"HTTP/1.1 {resp.status} {resp.reason}\r\n".encode("latin-1"))
                h.wfile.flush()
                time.sleep(0.05)    # let the partial response reach the client before the RST
            raise _Abort()
        if rule.kind == "delay":
            self._inject("delay")
            ex.seen.fault = f"delay {p['seconds']} s" + (" before forwarding" if p["before"] else "")
            if p["before"]:
                ex.read_body()
                self._stopping.wait(p["seconds"])
                return h.forward(ex)
            resp = h.forward(ex)
            self._stopping.wait(p["seconds"])
            return resp
        raise AssertionError(rule.kind)

    def _bulk(self, ex: _Exchange, h: _Handler, rule: _Rule) -> Optional[Response]:
        headers, body = _decode_body(ex.headers, ex.read_body())
        default_index = ex.path.strip("/").split("/")[0] if not ex.path.strip("/").startswith("_") else None
        # Parse the NDJSON into actions, keeping the raw lines to forward byte for byte.
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        actions, i = [], 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            meta_line = lines[i]
            try:
                doc = json.loads(meta_line)
                op = next(iter(doc))
                meta = doc[op] or {}
            except (ValueError, TypeError, StopIteration, AttributeError):
                return None    # not a bulk this proxy understands: OpenSearch shall judge it
            raw = [meta_line]
            source = None
            if op != "delete" and i + 1 < len(lines):
                source = lines[i + 1]
                raw.append(source)
                i += 1
            i += 1
            actions.append({"op": op, "meta": meta, "source": source, "raw": raw})
        select = rule.params["select"]
        errors = {}
        for pos, a in enumerate(actions):
            err = select(pos, {"op": a["op"], "meta": a["meta"], "source": a["source"]})
            if err:
                errors[pos] = err
        failed = sorted(errors)
        with self._lock:
            fire = bool(failed) and rule.remaining > 0
            if fire:
                rule.remaining -= 1
        if not fire:
            return None
        self._inject("bulk_items")
        failed_set = set(failed)
        keep = [a for pos, a in enumerate(actions) if pos not in failed_set]
        query = urllib.parse.parse_qsl(ex.query, keep_blank_values=True)
        filter_spec = ",".join(v for k, v in query if k == "filter_path")
        fwd_target = ex.target
        if filter_spec:
            fwd_query = urllib.parse.urlencode([(k, v) for k, v in query if k != "filter_path"])
            fwd_target = ex.path + (f"?{fwd_query}" if fwd_query else "")
        upstream_items, took, upstream_errors = [], 0, False
        if keep:
            fwd_body = b"".join(line + b"\n" for a in keep for line in a["raw"])
            fwd_headers = [(k, v) for k, v in headers if k.lower() != "accept-encoding"]
            resp = h.forward(ex, body=fwd_body, headers=fwd_headers, target=fwd_target)
            if resp.status != 200:
                return resp    # the whole bulk failed upstream: pass that on untouched
            doc = resp.json()
            upstream_items, took, upstream_errors = doc.get("items", []), doc.get("took", 0), doc.get("errors", False)
            if len(upstream_items) != len(keep):
                raise RuntimeError(f"upstream answered {len(upstream_items)} items for {len(keep)} actions")
        items, it = [], iter(upstream_items)
        for pos, a in enumerate(actions):
            if pos in failed_set:
                status, etype, reason = errors[pos]
                index = a["meta"].get("_index") or default_index
                doc_id = a["meta"].get("_id")
                item = {"_index": index, "_id": doc_id, "status": status,
                        "error": {"type": etype,
                                  "reason": reason.format(index=index, id=doc_id),
                                  "index": index, "index_uuid": "_na_", "shard": "0"}}
                items.append({a["op"]: item})
            else:
                items.append(next(it))
        out = {"took": took, "errors": True, "items": items}
        if filter_spec:
            out = _filter_path(out, filter_spec)
        with self._lock:
            self.bulk_items_failed += len(failed)
            self.bulk_items_forwarded += len(keep)
            self.bulk_log.append({"target": ex.target, "failed": [
                (pos, actions[pos]["meta"].get("_id"), errors[pos][0], errors[pos][1]) for pos in failed],
                "forwarded": len(keep), "upstream_errors": upstream_errors})
        ex.seen.fault = f"bulk: {len(failed)} of {len(actions)} item(s) failed"
        ex.seen.forwarded = bool(keep)
        return _json_response(200, out)
