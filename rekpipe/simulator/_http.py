"""The simulator's HTTP front: a loopback, keep-alive HTTP/1.1 server that hands each POST to
:meth:`RekognitionSimulator.handle` and writes its JSON 1.1 answer."""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import RekognitionSimulator

logger = logging.getLogger("rekpipe.simulator.server")


class Server(ThreadingHTTPServer):
    """Threaded server whose connection errors (a client hanging up) go to the log, not stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("Rekognition simulator connection from %s failed", client_address, exc_info=True)


class RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, so a boto3 client reuses its connection like it would with AWS."""

    protocol_version = "HTTP/1.1"
    server_version = "RekognitionSimulator"
    timeout = 60  # close idle keep-alive connections so handler threads do not pile up
    # Headers and body go out as two writes; with Nagle on, the second waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    simulator: RekognitionSimulator

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.simulator.handle(self.headers.get("X-Amz-Target", ""), body,
                                                dict(self.headers.items()), path=self.path, method="POST")
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", self.simulator._next_request_id())
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)
