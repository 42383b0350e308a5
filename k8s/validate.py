"""Checks the rendered manifests (`make k8s-validate` runs it from scripts/k8s-validate.sh, in
.venv-k8s/ with k8s/requirements.txt installed). Exits non-zero on any error.

    python k8s/validate.py RENDERED.yaml...

1. Schemas, offline, strict (an unknown field is an error): every built-in object against the
   Kubernetes OpenAPI schemas kubernetes-validate ships, for the oldest version the manifests need
   (1.30: `lifecycle.preStop.sleep`) and the newest it knows. It has no schema for the Prometheus
   Operator's CRDs, so PrometheusRule and ServiceMonitor are checked against the strict schemas
   below: our own, covering the fields of those CRDs that Meisa uses, nothing else (a field that
   the real CRD accepts but these schemas do not list fails here, on purpose: add it knowingly).
   A kind with no schema at all is an error.
2. Wiring, against the code: each service's Deployment sets every variable its config.rs
   requires, listens on 0.0.0.0 on the ports its probes and Service use, serves metrics on the
   `metrics` port, and its grace period outlasts its preStop sleep.
3. Monitoring: every PrometheusRule and Grafana dashboard expression parses as PromQL and names
   only metrics the services export (found in the code, or specified by issue 9 below), and
   every checkov skip annotation says why.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

import jsonschema
import kubernetes_validate
import promql_parser
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The oldest Kubernetes the manifests need (preStop sleep is on by default since 1.30) and the
# newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
SERVICES = {"contacts": 50051, "automations": 50052, "mailer": 50053, "gateway": 8080}
# Metrics the services are specified to export (issue 9: OpenTelemetry semantic-convention names
# as Prometheus sees them) that may not be recorded in the code yet; found in it, they need no
# entry here. Kind: histogram (so _bucket, _sum and _count exist).
SPECIFIED_METRICS = {
    "http_server_request_duration_seconds": "histogram",  # gateway: method, http_route, http_response_status_code
    "rpc_server_call_duration_seconds": "histogram",  # gRPC services: rpc_method, rpc_grpc_status_code
}
# Series Prometheus itself adds to every target.
PROMETHEUS_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

errors: list[str] = []
warnings: list[str] = []


def error(where: str, message: str) -> None:
    errors.append(f"{where}: {message}")


# --- 1. schemas -------------------------------------------------------------------------------

STR = {"type": "string"}
STR_MAP = {"type": "object", "additionalProperties": STR}
METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": STR, "namespace": STR, "labels": STR_MAP, "annotations": STR_MAP},
}
DURATION = {"type": "string", "pattern": r"^((\d+)(ms|s|m|h|d|w|y))+$"}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": STR_MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": STR,
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": STR},
                },
            },
        },
    },
}


def crd(spec: dict) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": STR, "kind": STR, "metadata": METADATA, "spec": spec},
    }


CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): crd({
        "type": "object",
        "additionalProperties": False,
        "required": ["groups"],
        "properties": {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "rules"],
                    "properties": {
                        "name": STR,
                        "interval": DURATION,
                        "rules": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["alert", "expr", "labels", "annotations"],
                                "properties": {
                                    "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                                    "expr": STR,
                                    "for": DURATION,
                                    "keep_firing_for": DURATION,
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": STR,
                                        "required": ["severity"],
                                        "properties": {"severity": {"enum": ["critical", "warning", "info"]}},
                                    },
                                    "annotations": {
                                        "type": "object",
                                        "additionalProperties": STR,
                                        "required": ["summary"],
                                    },
                                },
                            },
                        },
                    },
                },
            }
        },
    }),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): crd({
        "type": "object",
        "additionalProperties": False,
        "required": ["selector", "endpoints"],
        "properties": {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": STR}},
            },
            "jobLabel": STR,
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["port"],
                    "properties": {
                        "port": STR,
                        "path": STR,
                        "scheme": {"enum": ["http", "https"]},
                        "interval": DURATION,
                        "scrapeTimeout": DURATION,
                        "honorLabels": {"type": "boolean"},
                    },
                },
            },
        },
    }),
}


def check_schema(where: str, doc: dict) -> None:
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        for e in jsonschema.Draft7Validator(CRD_SCHEMAS[key]).iter_errors(doc):
            path = ".".join(str(p) for p in e.absolute_path) or "(top)"
            error(where, f"{path}: {e.message} (Meisa's strict schema of {key[1]})")
        return
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            error(where, f"no schema for {key[0]} {key[1]} in Kubernetes {version}; add a strict schema to CRD_SCHEMAS")
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(top)"
            error(where, f"Kubernetes {version}: {path}: {e.message}")


SKIP = re.compile(r"^(CKV2?_K8S_\d+)=(.{10,})$")


def check_skips(where: str, doc: dict) -> None:
    for key, value in (doc.get("metadata", {}).get("annotations") or {}).items():
        if key.startswith("checkov.io/skip") and not SKIP.match(value):
            error(where, f"annotation {key}: write CKV_K8S_<n>=<why it does not apply here>, got {value!r}")


# --- 2. wiring --------------------------------------------------------------------------------

def required_env(service: str) -> set[str]:
    """The variables `config::required("…")` reads anywhere in the service's sources."""
    found = set()
    for path in (ROOT / "services" / service / "src").rglob("*.rs"):
        found |= set(re.findall(r'config::required\(\s*"([A-Z0-9_]+)"', path.read_text()))
    return found


def check_service(where: str, deployment: dict, config_maps: dict[str, dict]) -> None:
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    container = next((c for c in pod["containers"] if c["name"] == name), None)
    if container is None:
        error(where, f"no container named {name}")
        return
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef", {}).get("name")
        if ref:
            if ref not in config_maps:
                error(where, f"envFrom names the ConfigMap {ref}, which is not rendered")
            env.update(config_maps.get(ref, {}))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")  # None: from a Secret or the downward API
    for var in sorted(required_env(name) - env.keys()):
        error(where, f"{var} is required by services/{name}/src (config::required) but not set")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    port = SERVICES[name]
    if name == "gateway":
        if env.get("MEISA_HTTP_HOST") != "0.0.0.0" or env.get("MEISA_HTTP_PORT") != str(port):
            error(where, f"MEISA_HTTP_HOST / MEISA_HTTP_PORT must be 0.0.0.0 / {port}")
        if ports.get("http") != port:
            error(where, f"the container port `http` must be {port}")
    else:
        if env.get("MEISA_GRPC_ADDR") != f"0.0.0.0:{port}":
            error(where, f"MEISA_GRPC_ADDR must be 0.0.0.0:{port}, is {env.get('MEISA_GRPC_ADDR')}")
        if ports.get("grpc") != port:
            error(where, f"the container port `grpc` must be {port}")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if container.get(probe, {}).get("grpc", {}).get("port") != port:
                error(where, f"{probe} must be a gRPC probe on {port}")
    if env.get("MEISA_METRICS_ADDR") != "0.0.0.0:9090" or ports.get("metrics") != 9090:
        error(where, "metrics must be served on 0.0.0.0:9090 (MEISA_METRICS_ADDR), the container port `metrics`")
    sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not sleep or grace <= sleep + 10:
        error(where, f"terminationGracePeriodSeconds ({grace}) must outlast the preStop sleep ({sleep}) and the drain")


# --- 3. monitoring ----------------------------------------------------------------------------

def exported_metrics() -> dict[str, str]:
    """Metric name → kind, from the `metrics` macros in the services' and crates' sources."""
    found: dict[str, str] = {}
    pattern = re.compile(r'\b(counter|histogram|gauge)!\(\s*"([A-Za-z_:.][\w:.]*)"')
    for top in ("services", "crates"):
        for path in (ROOT / top).rglob("*.rs"):
            if "/src/" not in str(path):
                continue
            for kind, name in pattern.findall(path.read_text()):
                found[name.replace(".", "_")] = kind
    return found


def series_names(metrics: dict[str, str]) -> set[str]:
    names = set(PROMETHEUS_METRICS)
    for name, kind in metrics.items():
        names.add(name)
        if kind == "histogram":  # a histogram, or a summary while no buckets are configured
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects (parsing it, so a syntax error raises ValueError)."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.MatrixSelector):
            node = node.vector_selector
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name or next(
                (m.value for m in node.matchers.matchers if m.name == "__name__"), None)
            names.add(name or "(a selector without a metric name)")
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def check_expr(where: str, expr: str, known: set[str]) -> None:
    # Grafana's variables, as Prometheus would see them once substituted.
    concrete = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    concrete = re.sub(r"\$\{?\w+\}?", "x", concrete)
    try:
        used = metric_names(concrete)
    except ValueError as e:
        error(where, f"PromQL does not parse ({e}): {expr}")
        return
    for name in sorted(used - known):
        error(where, f"{name} is not a metric the services export: {expr.strip()}")


def check_rules(where: str, doc: dict, known: set[str]) -> None:
    for group in doc.get("spec", {}).get("groups", []):
        for rule in group.get("rules", []):
            check_expr(f"{where} {rule.get('alert')}", rule.get("expr", ""), known)


def check_dashboard(where: str, text: str, known: set[str]) -> None:
    try:
        board = json.loads(text)
    except json.JSONDecodeError as e:
        error(where, f"not JSON: {e}")
        return
    if not board.get("title") or not board.get("uid"):
        error(where, "a dashboard needs a title and a uid")
    ids, count = set(), 0

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for panel in panels(board.get("panels", [])):
        if panel.get("id") in ids:
            error(where, f"panel id {panel.get('id')} is used twice")
        ids.add(panel.get("id"))
        for target in panel.get("targets", []):
            count += 1
            check_expr(f"{where} panel {panel.get('title')!r}", target.get("expr", ""), known)
    if count == 0:
        error(where, "the dashboard queries nothing")


# --- main -------------------------------------------------------------------------------------

def main(paths: list[str]) -> int:
    metrics = exported_metrics()
    for name in SPECIFIED_METRICS:
        if name not in metrics:
            warnings.append(f"{name} is specified (issue 9) but not recorded in the code yet")
    known = series_names({**SPECIFIED_METRICS, **metrics})
    for path in paths:
        overlay = pathlib.Path(path).stem
        try:
            docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]
        except yaml.YAMLError as e:
            error(overlay, f"not YAML: {e}")
            continue
        config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d.get("kind") == "ConfigMap"}
        kinds: dict[str, int] = {}
        for doc in docs:
            where = f"{overlay}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            kinds[doc.get("kind")] = kinds.get(doc.get("kind"), 0) + 1
            check_schema(where, doc)
            check_skips(where, doc)
            if doc.get("kind") == "Deployment" and doc["metadata"]["name"] in SERVICES:
                check_service(where, doc, config_maps)
            if doc.get("kind") == "PrometheusRule":
                check_rules(where, doc, known)
            if doc.get("kind") == "ConfigMap" and (doc["metadata"].get("labels") or {}).get("grafana_dashboard"):
                for key, text in doc.get("data", {}).items():
                    check_dashboard(f"{where} {key}", text, known)
        for service in SERVICES:
            for kind, name in (("Deployment", service), ("Service", service), ("ServiceAccount", service),
                               ("ConfigMap", service), ("PodDisruptionBudget", service),
                               ("NetworkPolicy", service), ("Job", f"{service}-migrate")):
                if not any(d.get("kind") == kind and d["metadata"]["name"] == name for d in docs):
                    error(overlay, f"no {kind} {name}")
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        print(f"  {overlay}: {len(docs)} objects ({summary})")
    for w in warnings:
        print(f"  warning: {w}")
    for e in errors:
        print(f"  ERROR {e}", file=sys.stderr)
    if errors:
        print(f"k8s-validate: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"  schemas (Kubernetes {', '.join(K8S_VERSIONS)}, strict), wiring, PromQL and dashboards: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
