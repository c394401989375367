"""uvicorn serving a raw ASGI app that answers {"path": scope["path"]}.

scope["path"] is what Starlette's router, hence FastAPI, vLLM and KServe,
matches routes on: uvicorn percent-decodes the target once and changes
nothing else. Usage: asgi_echo.py [port] [--http auto|h11|httptools]; "auto"
is uvicorn's default (httptools when installed, as uvicorn[standard] does).
"""

import argparse
import json
import socket
import sys

import uvicorn


def log(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    log(json.dumps({"host": host, "path": path}))
    body = json.dumps({"path": path}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--http", default="auto")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(app, http=args.http, log_level="warning")
    server = uvicorn.Server(config)
    log(f"listening {sock.getsockname()[1]}")
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
