#!/usr/bin/env bash
# debian-slim.sh MIRROR: the root file system of the debian:bookworm-slim
# stand-in, as a tar stream on stdout (build-bases.sh imports it). Debian's
# minimal base (debootstrap --variant=minbase bookworm), slimmed the way the
# official slim image is: no package lists or downloaded .debs, no docs
# (copyright files stay), man pages or translations, and dpkg told to leave
# them out of whatever is installed on top. Needs root.
set -euo pipefail
MIRROR="$1"
DIR="$(mktemp -d /tmp/infergate-debootstrap.XXXXXX)"
trap 'rm -rf "$DIR" "$DIR.log"' EXIT
debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" >"$DIR.log" 2>&1 || { tail -20 "$DIR.log" >&2; echo "debootstrap failed (log above)" >&2; exit 1; }
rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/lib/apt/lists/* "$DIR"/var/log/*.log \
  "$DIR"/usr/share/man/* "$DIR"/usr/share/info/* "$DIR"/usr/share/locale/* "$DIR"/usr/share/groff/* "$DIR"/usr/share/lintian/*
find "$DIR/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
cat >"$DIR/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
CFG
printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$MIRROR" \
  >"$DIR/etc/apt/sources.list.d/debian.sources"
# Docker provides these per container.
rm -f "$DIR/etc/apt/sources.list" "$DIR/etc/hostname" "$DIR/etc/resolv.conf"
tar -C "$DIR" --numeric-owner -c .
