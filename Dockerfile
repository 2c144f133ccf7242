# gitops-checker: the CLI, the GitHub Action entrypoint, and the Kustomize and Helm binaries
# the checker runs. Three stages, so the final image holds no downloader, compiler or pip:
#   tools    downloads Kustomize and Helm at pinned versions and checks their SHA-256;
#   build    installs the project from this repository into a virtual environment;
#   final    the Python runtime, that environment, the two binaries and a non-root user.
#
# The base image is pinned by exact version and by the digest of its multi-arch index, written
# out in each FROM so that update tools such as Dependabot can see it. To move to a
# newer base, change all three together (docker buildx imagetools inspect <tag> prints the
# digest); a test keeps them equal. No `# syntax=` line: the builder's own Dockerfile
# frontend is enough, and an unpinned frontend image would be one more thing pulled at build.

FROM python:3.12.13-slim-bookworm@sha256:4766d8b510c428e595d74b9cc5bbb2fae8e26316fffb4adc89908d79aacd58a2 AS tools
# Versions and the SHA-256 of each release archive, from the projects' published checksums
# (kustomize: checksums.txt of the release; helm: <archive>.sha256sum). Change together.
ARG KUSTOMIZE_VERSION=5.4.3
ARG KUSTOMIZE_SHA256_AMD64=3669470b454d865c8184d6bce78df05e977c9aea31c30df3c669317d43bcc7a7
ARG KUSTOMIZE_SHA256_ARM64=1b515578b0af12c15d9856720066ce2fe66756d63785b2cbccaf2885beb2381c
ARG HELM_VERSION=3.16.2
ARG HELM_SHA256_AMD64=9318379b847e333460d33d291d4c088156299a26cd93d570a7f5d0c36e50b5bb
ARG HELM_SHA256_ARM64=1888301aeb7d08a03b6d9f4d2b73dcd09b89c41577e80e3455c113629fc657a4
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /tools
# Python's urllib verifies TLS with the base image's CA bundle; no curl is installed anywhere.
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}" \
    && case "${arch}" in \
         amd64) kustomize_sha256="${KUSTOMIZE_SHA256_AMD64}"; helm_sha256="${HELM_SHA256_AMD64}" ;; \
         arm64) kustomize_sha256="${KUSTOMIZE_SHA256_ARM64}"; helm_sha256="${HELM_SHA256_ARM64}" ;; \
         *) echo "unsupported architecture: ${arch}" >&2; exit 1 ;; \
       esac \
    && fetch() { python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"; } \
    && fetch "https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2Fv${KUSTOMIZE_VERSION}/kustomize_v${KUSTOMIZE_VERSION}_linux_${arch}.tar.gz" kustomize.tar.gz \
    && fetch "https://get.helm.sh/helm-v${HELM_VERSION}-linux-${arch}.tar.gz" helm.tar.gz \
    && printf '%s  %s\n' "${kustomize_sha256}" kustomize.tar.gz "${helm_sha256}" helm.tar.gz \
       | sha256sum --check --strict \
    && mkdir bin \
    && tar -xzf kustomize.tar.gz -C bin kustomize \
    && tar -xzf helm.tar.gz -C bin --strip-components=1 "linux-${arch}/helm" \
    && chmod 0755 bin/kustomize bin/helm \
    && rm kustomize.tar.gz helm.tar.gz

FROM python:3.12.13-slim-bookworm@sha256:4766d8b510c428e595d74b9cc5bbb2fae8e26316fffb4adc89908d79aacd58a2 AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY checker/ checker/
COPY policy-packs/ policy-packs/
# The project and its dependencies go into one virtual environment; pip itself is removed
# from it so the final image cannot install anything.
# Real OPA (repository templates get Gatekeeper's exact semantics): its wheel is built for
# x86_64 only and declares Python 3.14, although it runs on this one; other architectures
# evaluate repository templates on regorus, with a warning where the engines differ.
ARG TARGETARCH
RUN python -m venv /opt/gitops-checker \
    && /opt/gitops-checker/bin/pip install --no-cache-dir . \
    && if [ "${TARGETARCH:-$(dpkg --print-architecture)}" = amd64 ]; then \
         /opt/gitops-checker/bin/pip install --no-cache-dir --ignore-requires-python \
           opa-golib-python-bindings==0.4.4; \
       fi \
    && /opt/gitops-checker/bin/pip uninstall --yes pip

FROM python:3.12.13-slim-bookworm@sha256:4766d8b510c428e595d74b9cc5bbb2fae8e26316fffb4adc89908d79aacd58a2
LABEL org.opencontainers.image.title="gitops-checker" \
      org.opencontainers.image.description="Policy and drift checks for Kubernetes GitOps repositories" \
      org.opencontainers.image.source="https://github.com/gitops-checker/gitops-checker" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/gitops-checker/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=tools /tools/bin/kustomize /tools/bin/helm /usr/local/bin/
COPY --from=build /opt/gitops-checker /opt/gitops-checker
# No package manager front end for Python in the runtime image (the base interpreter's pip,
# named by absolute path: PATH already leads to the environment, which has none); one
# unprivileged user whose uid (1001) is the uid GitHub-hosted runners own the workspace with,
# so the action can write its reports and GITHUB_OUTPUT into the mounted workspace.
RUN /usr/local/bin/python3 -m pip uninstall --yes pip \
    && useradd --uid 1001 --user-group --create-home --home-dir /home/checker \
         --shell /usr/sbin/nologin checker
USER 1001:1001
WORKDIR /work
ENTRYPOINT ["/opt/gitops-checker/bin/gitops-checker-action"]
