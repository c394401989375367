# Local stand-in for openpolicyagent/opa:<version>-static (built by
# build-bases.sh where no image registry is reachable): the image is just
# /opa. The official binary is statically linked; this one is the same OPA
# release as set-up builds it (with cgo), which the Dockerfile only runs in
# its Debian build stage.
FROM scratch
COPY opa /opa
ENTRYPOINT ["/opa"]
