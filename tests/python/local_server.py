"""A local HTTP server for tests that need an endpoint's answers and no cluster: OpenSearch's _bulk, DynamoDB's
DescribeTable, a container credentials endpoint."""
from __future__ import annotations

import http.server
import json
import threading


class LocalServer:
    """Answers each POST with post(path, headers, body) and each GET with get(path), both -> (status, bytes), from
    a thread per connection. A context manager: shut down on leaving."""

    def __init__(self, post, get=None):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.reply(*post(self.path, self.headers, body))

            def do_GET(self):
                if get is None:
                    self.reply(405, b'{"error":"no GET here"}')
                else:
                    self.reply(*get(self.path))

            def reply(self, status, out):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def all_succeeded(body: bytes) -> bytes:
    """_bulk's answer with every action a success (the action lines are the even ones)."""
    actions = [json.loads(line) for line in body.decode().splitlines()[::2]]
    return json.dumps({"errors": False, "items": [{next(iter(a)): {"status": 201}} for a in actions]}).encode()
