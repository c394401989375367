#!/usr/bin/env bash
# Installs and builds the echo backends of test/backends (the real HTTP
# servers test/e2e/backend-paths.test.ts checks path handling against),
# pinned, into .tools/: Tomcat, Jetty and Netty jars from Maven Central
# (compiled with javac), uvicorn and werkzeug from PyPI, a Go net/http
# binary, and Debian's nginx. Idempotent: each part is redone only when its
# pinned inputs changed. A missing prerequisite stops with how to install it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/test/backends"
OUT="$ROOT/.tools/backends"
PY_OUT="$ROOT/.tools/python-backends"
mkdir -p "$OUT"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '    %s\n' "$*"; }
die() { printf 'setup-backends: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required: $2"; }
# fingerprint FILE... <EXTRA: one hash over what stdin says (tool versions) and the files' contents
fingerprint() { { cat; cat "$@"; } | sha256sum | cut -c1-16; }
# up_to_date STAMP PRINT: true if STAMP holds PRINT
up_to_date() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

need java "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jdk-headless)"
need javac "install a Java 17+ JDK (Debian: apt-get install openjdk-17-jdk-headless)"
need mvn "install Maven 3.6+ (Debian: apt-get install maven)"
need go "install Go 1.24+ (https://go.dev/dl or Debian golang-go)"
need python3 "install Python 3.10+ (Debian: apt-get install python3 python3-pip)"
python3 -m pip --version >/dev/null 2>&1 || die "pip is required: apt-get install python3-pip"
JAVAC_VERSION="$(javac -version 2>&1)"
JAVA_MAJOR="$(sed -n 's/^javac \([0-9]*\).*/\1/p' <<<"$JAVAC_VERSION")"
[[ "${JAVA_MAJOR:-0}" -ge 17 ]] || die "javac is $JAVAC_VERSION; Tomcat 11 and Jetty 12 need Java 17+ (Debian: apt-get install openjdk-17-jdk-headless)"

# --- Java: Tomcat, Jetty, Netty ------------------------------------------------
# Maven's local repository lives in .tools too, so a fresh clone fetches exactly the pinned jars.
M2="$OUT/m2"
for server in tomcat jetty netty; do
  main="${server^}Echo"
  step "$main (Maven Central jars of test/backends/java/pom.xml profile $server, javac)"
  dir="$OUT/java/$server"
  jars_print="$(echo "$server" | fingerprint "$SRC/java/pom.xml")"
  if up_to_date "$dir/lib/.stamp" "$jars_print"; then
    ok "jars up to date"
  else
    ok "mvn -P $server dependency:copy-dependencies -> .tools/backends/java/$server/lib"
    rm -rf "$dir/lib"
    # Debian's Maven 3.8 writes colour resets even with -B -q; strip them (pipefail keeps mvn's status).
    mvn -B -q -f "$SRC/java/pom.xml" -Dmaven.repo.local="$M2" -P "$server" \
      dependency:copy-dependencies -DoutputDirectory="$dir/lib" -DincludeScope=runtime 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g'
    echo "$jars_print" >"$dir/lib/.stamp"
  fi
  sources=("$SRC/java/EchoLog.java" "$SRC/java/$main.java")
  [[ "$server" == netty ]] || sources+=("$SRC/java/EchoServlet.java")
  classes_print="$(printf '%s\n%s\n' "$jars_print" "$JAVAC_VERSION" | fingerprint "${sources[@]}")"
  if up_to_date "$dir/classes/.stamp" "$classes_print"; then
    ok "classes up to date"
  else
    ok "javac ${sources[*]##*/}"
    rm -rf "$dir/classes"
    javac -Xlint:all -Werror -d "$dir/classes" -cp "$dir/lib/*" "${sources[@]}"
    echo "$classes_print" >"$dir/classes/.stamp"
  fi
done

# --- Python: uvicorn, werkzeug -------------------------------------------------
step "uvicorn + werkzeug (PyPI, test/backends/python/requirements.txt -> .tools/python-backends)"
py_print="$(python3 --version | fingerprint "$SRC/python/requirements.txt")"
if up_to_date "$PY_OUT/.stamp" "$py_print"; then
  ok "up to date"
else
  rm -rf "$PY_OUT"
  ok "pip install --target .tools/python-backends --no-deps -r test/backends/python/requirements.txt"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-compile --no-deps \
    --target "$PY_OUT" -r "$SRC/python/requirements.txt"
  echo "$py_print" >"$PY_OUT/.stamp"
fi

# --- Go: net/http ServeMux -------------------------------------------------------
step "go-echo (net/http ServeMux, go build)"
go_print="$(go version | fingerprint "$SRC/go/go.mod" "$SRC/go/main.go")"
if [[ -x "$OUT/go-echo" ]] && up_to_date "$OUT/go-echo.stamp" "$go_print"; then
  ok "up to date"
else
  ok "go build -o .tools/backends/go-echo ./test/backends/go"
  (cd "$SRC/go" && go build -trimpath -o "$OUT/go-echo" .)
  echo "$go_print" >"$OUT/go-echo.stamp"
fi

# --- nginx -------------------------------------------------------------------------
# The test runs it itself (daemon off, generated config, temp prefix); the Debian service is never used.
step "nginx (Debian package nginx)"
if ! PATH="$PATH:/usr/sbin" command -v nginx >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    ok "apt-get install nginx"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
  else
    die "nginx is required for the backend path tests: apt-get install nginx (as root)"
  fi
fi
ok "$(PATH="$PATH:/usr/sbin" nginx -v 2>&1)"
