#!/usr/bin/env bash
# `make k8s-validate`: renders every overlay under k8s/overlays with `kubectl kustomize`, then
#   1. validates every object offline and strictly (unknown fields are errors) against the
#      Kubernetes schemas (kubernetes-validate) and our strict schemas of the Prometheus
#      Operator CRDs, checks the services' wiring against their config.rs, and the PromQL of the
#      alerts and the Grafana dashboard against the metrics the code exports (k8s/validate.py);
#   2. scans the rendered objects with checkov: any failed check not skipped with a reason
#      (k8s/checkov-skips.yaml, or a checkov.io/skip annotation) fails.
# The validators are pinned in k8s/requirements.txt and installed into .venv-k8s/ on first use.
# Without kubectl it says how to install it and exits 0, or 1 under CI.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

if ! command -v kubectl >/dev/null; then
  cat >&2 <<'TXT'
k8s-validate: kubectl is not installed, so the manifests cannot be rendered. Install it (it
carries kustomize), e.g. on Debian/Ubuntu:
  curl -fsSLo /usr/local/bin/kubectl "https://dl.k8s.io/release/$(curl -fsSL https://dl.k8s.io/release/stable.txt)/bin/linux/amd64/kubectl" && chmod +x /usr/local/bin/kubectl
or with a package manager: `snap install kubectl --classic`, `brew install kubectl`, or the
Kubernetes apt repository (https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/).
TXT
  if [ -n "${CI:-}" ]; then exit 1; fi
  echo "k8s-validate: skipped (set CI=1 to make this an error)" >&2
  exit 0
fi

VENV=.venv-k8s
REQ=k8s/requirements.txt
stamp=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$stamp" ]; then
  say "installing the validators into $VENV (once: $REQ)"
  rm -rf "$VENV"
  # Debian's python3 has no venv module until python3-venv is installed.
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    if ! command -v apt-get >/dev/null; then
      echo "k8s-validate: python3 cannot make a virtualenv; install its venv module (python3-venv)" >&2
      exit 1
    fi
    say "installing python3-venv with apt"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
  fi
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  echo "$stamp" >"$VENV/.requirements"
fi

OUT=target/k8s-validate
rm -rf "$OUT" && mkdir -p "$OUT"
for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  say "rendering $overlay"
  kubectl kustomize "$overlay" >"$OUT/$name.yaml"
done

say "schemas, wiring, alerts and dashboards (k8s/validate.py)"
"$VENV/bin/python" k8s/validate.py "$OUT"/*.yaml

say "checkov $("$VENV/bin/checkov" --version) (kubernetes framework)"
skips=$("$VENV/bin/python" - <<'PY'
import sys, yaml
entries = yaml.safe_load(open("k8s/checkov-skips.yaml")) or []
bad = [e for e in entries if not str(e.get("id", "")).startswith("CKV") or len(str(e.get("reason") or "").strip()) < 10]
if bad:
    sys.exit(f"k8s/checkov-skips.yaml: every skip needs an id and a reason: {bad}")
for e in entries:
    print(f"  skipped everywhere: {e['id']}: {' '.join(e['reason'].split())[:100]}…", file=sys.stderr)
print(",".join(e["id"] for e in entries))
PY
)
# No network: no update check, no Prisma Cloud, no downloaded policies.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
if ! "$VENV/bin/checkov" --framework kubernetes -d "$OUT" --skip-check "$skips" \
    --skip-download --compact --quiet >"$OUT/checkov.txt" 2>&1; then
  cat "$OUT/checkov.txt" >&2
  echo "k8s-validate: checkov failed (above); fix the manifests, or skip a check with a reason" >&2
  exit 1
fi
grep -E '^(kubernetes scan results|Passed checks)' "$OUT/checkov.txt" | sed 's/^/  /' || true
say "k8s-validate: ok"
