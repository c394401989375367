"""werkzeug's WSGI server (what `flask run` uses, threaded as Flask runs it) with an app answering {"path": ...}.

The path is environ["PATH_INFO"] read the way werkzeug's router (hence
Flask) reads it: PEP 3333 carries the decoded bytes as latin-1, and the
router decodes them as UTF-8. Usage: wsgi_echo.py [port].
"""

import json
import sys

from werkzeug.serving import make_server


def log(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def app(environ, start_response):
    path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
    log(json.dumps({"host": environ.get("HTTP_HOST", ""), "path": path}))
    body = json.dumps({"path": path}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = make_server("127.0.0.1", port, app, threaded=True)
    log(f"listening {server.server_port}")
    server.serve_forever()


if __name__ == "__main__":
    main()
