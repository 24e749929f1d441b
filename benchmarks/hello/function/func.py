"""A plain ASGI handler answering a small JSON document, with no lscloud runtime around it."""

import json
import os


class Hello:
    def __init__(self):
        self.greeting = "hello"

    def start(self, cfg):
        # func-python calls start() with the environment; K_SERVICE is set by the platform
        self.greeting = cfg.get("HELLO_GREETING", "hello")
        self.service = cfg.get("K_SERVICE", "hello")

    def stop(self):
        pass

    async def handle(self, scope, receive, send):
        # drain the request body so keep-alive connections stay usable
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        body = json.dumps({"message": self.greeting, "service": getattr(self, "service", "hello"),
                           "method": scope["method"], "path": scope["path"], "pid": os.getpid()},
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def new():
    """The Knative entry point: one instance per process."""
    return Hello()
