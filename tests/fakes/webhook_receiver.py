"""A real webhook receiver on loopback that can be down, fail, answer slowly, and deduplicates by key."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebhookReceiver:
    """`fail_first` 5xx answers per idempotency key; `slow_first` posts per key accepted but answered late.

    `posts` is every request that reached it; `accepted` the first accepted copy per key (what a
    deduplicating receiver acts on); `duplicates` the copies it recognised and ignored.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        fail_first: int = 0,
        fail_status: int = 500,
        slow_first: int = 0,
        slow_seconds: float = 0.0,
    ):
        self.port = port or free_port()
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.slow_first = slow_first
        self.slow_seconds = slow_seconds
        self.posts: list[dict] = []
        self.accepted: dict[str, dict] = {}
        self.duplicates: list[str] = []
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def posts_for(self, key: str) -> int:
        return sum(1 for p in self.posts if p["key"] == key)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                key = self.headers.get("Idempotency-Key", "")
                with receiver.lock:
                    receiver.posts.append({"path": self.path, "key": key, "body": body})
                    seen = receiver.posts_for(key)
                    failing = seen <= receiver.fail_first
                    if not failing:
                        if key in receiver.accepted:
                            receiver.duplicates.append(key)
                        else:
                            receiver.accepted[key] = {"path": self.path, "body": body}
                if not failing and seen <= receiver.fail_first + receiver.slow_first:
                    time.sleep(receiver.slow_seconds)
                status = receiver.fail_status if failing else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
