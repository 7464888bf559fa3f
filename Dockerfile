# reputation-monitor: the daemon in a small Debian image, Python from Debian's own packages.
#
#   docker build -t reputation-monitor .
#   docker run --read-only --tmpfs /tmp -v repmon-state:/var/lib/reputation-monitor \
#     -e REPMON_QUEUE_URLS=https://sqs.us-east-1.amazonaws.com/111122223333/ses-events \
#     -p 9464:9464 reputation-monitor
#
# Behind a TLS-inspecting proxy, make the proxy's CA bundle visible to the build and name it:
#   --build-arg PIP_CERT=/path/in/build/ca.crt   (scripts/image-test.sh mounts it read-only)
ARG BASE_IMAGE=debian:bookworm-slim

# ---- builder: a venv with the app and its dependencies (every one ships a manylinux wheel, so
# no compiler is needed here either; none reaches the final stage in any case).
FROM ${BASE_IMAGE} AS builder
# Lets a build script remove this stage's leftover image by label (scripts/image-test.sh).
LABEL io.reputation-monitor.stage=builder
ARG PIP_CERT
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/reputation-monitor
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rules ./rules
COPY monitor ./monitor
# The wheel force-includes rules/presets.yaml as package data (monitor/_rules/presets.yaml).
# An empty PIP_CERT means "no extra CA": pip would take "" as a file name, so unset it.
RUN if [ -z "${PIP_CERT:-}" ]; then unset PIP_CERT; fi \
 && /opt/reputation-monitor/bin/pip install . \
 && /opt/reputation-monitor/bin/pip uninstall -y pip setuptools \
 && /opt/reputation-monitor/bin/reputation-monitor --version

# ---- runtime: python3 and CA certificates, the venv, the shipped rules, a non-root user.
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# A fixed uid/gid so Kubernetes can check runAsNonRoot and fsGroup can make volumes writable.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 repmon \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/reputation-monitor \
      --no-create-home --shell /usr/sbin/nologin repmon \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/reputation-monitor \
 && install -d -m 0755 /etc/reputation-monitor/rules
COPY --from=builder /opt/reputation-monitor /opt/reputation-monitor
COPY rules/presets.yaml rules/example-tenants.yaml.example /etc/reputation-monitor/rules/
# REPMON_HTTP_HOST: the app binds 127.0.0.1 by default so a laptop run never exposes the admin
# API; in a container the kubelet's probes and Prometheus come from outside the network
# namespace, so the image listens on every interface (mutations still need REPMON_ADMIN_TOKEN).
# PYTHONDONTWRITEBYTECODE: the root filesystem may be read-only; the venv is compiled at build.
ENV PATH=/opt/reputation-monitor/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REPMON_RULES_DIR=/etc/reputation-monitor/rules \
    REPMON_STATE_URL=sqlite:////var/lib/reputation-monitor/state.db \
    REPMON_HTTP_HOST=0.0.0.0 \
    REPMON_HTTP_PORT=9464
WORKDIR /var/lib/reputation-monitor
VOLUME ["/var/lib/reputation-monitor"]
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["reputation-monitor"]
CMD ["run"]
