#!/usr/bin/env python3
"""Static checks of rendered Kubernetes manifests (deploy/k8s), run by crates/loam/tests/deploy/k8s.rs.

    k8s_manifests.py check RENDER.yaml --loam BIN --probe PROCESS=PATH... [--secrets DIR]
    k8s_manifests.py break MUTATION RENDER.yaml OUT.yaml      (a broken copy, to show a check fails)

`check` prints one line per problem and exits 1 when there is any:
- schema: every object validates with kubernetes-validate (strict, the newest Kubernetes it knows); kinds
  that are CRDs (ServiceMonitor) are checked by the cross-references below instead;
- selectors: a workload's selector matches its own pod labels; each Service, PodDisruptionBudget,
  NetworkPolicy and ServiceMonitor selects something; a StatefulSet's serviceName is a headless Service;
- references: every ConfigMap and Secret a pod names (volumes, env, envFrom), and every key it names,
  exists in the render or among the Secrets of --secrets DIR (deploy/k8s/make-secrets.sh's output:
  the Secrets the production overlays expect to exist);
- ports: every named port a Service, probe or NetworkPolicy uses is a container port of the pods it
  reaches; a numeric probe port is a container port;
- probes: each loam container's probe paths are endpoints of its process (--probe coordinator=/api/v1/health
  ..., from the code's constants), etcd's are /health;
- config: each ConfigMap TOML a loam container reads is accepted by `BIN <process> --config F
  --print-config`, run against a copy of the pod's files (ConfigMap items and Secret keys where the pod
  mounts them);
- security: every container but the FUSE one runs with the restricted securityContext; the worker's preStop
  hook is exactly the contract's drain command.
"""
import copy
import os
import re
import subprocess
import sys
import tempfile

import yaml

CRD_KINDS = {"ServiceMonitor"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
PRESTOP = ["loam", "worker", "drain", "--config", "/etc/loam/worker.toml"]
ETCD_PROBES = {"/health"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def matches(selector, labels):
    """A label selector (matchLabels only, as the manifests use) against labels."""
    want = selector.get("matchLabels", selector) if selector else {}
    return bool(want) and all(labels.get(k) == v for k, v in want.items())


def pods(objs):
    """(workload, pod template) of every workload."""
    return [(o, o["spec"]["template"]) for o in objs if o["kind"] in WORKLOADS]


def containers(tpl):
    spec = tpl["spec"]
    return spec.get("initContainers", []) + spec.get("containers", [])


def is_loam(c):
    return c["image"].split("/")[-1].split(":")[0] == "loam"


def process_of(c):
    return c.get("args", [None])[0] if is_loam(c) else None


def check_schema(objs, errors):
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    for o in objs:
        if o["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"schema: {name(o)}: {e.message} at {'/'.join(map(str, e.path))}")
        except Exception as e:  # an unknown kind or version
            errors.append(f"schema: {name(o)}: {e}")


def check_selectors(objs, errors):
    templates = pods(objs)
    for w, tpl in templates:
        if not matches(w["spec"]["selector"], tpl["metadata"].get("labels", {})):
            errors.append(f"selector: {name(w)}: its selector does not match its pod labels")
    services = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    for o in objs:
        kind = o["kind"]
        if kind == "Service":
            sel = o["spec"].get("selector")
            if not any(matches(sel, t["metadata"].get("labels", {})) for _, t in templates):
                errors.append(f"selector: {name(o)} selects no pod")
        elif kind in ("PodDisruptionBudget",):
            if not any(matches(o["spec"]["selector"], t["metadata"].get("labels", {})) for _, t in templates):
                errors.append(f"selector: {name(o)} selects no pod")
        elif kind == "NetworkPolicy":
            if not any(matches(o["spec"]["podSelector"], t["metadata"].get("labels", {})) for _, t in templates):
                errors.append(f"selector: {name(o)} selects no pod")
        elif kind == "ServiceMonitor":
            chosen = [s for s in services.values() if matches(o["spec"]["selector"], s["metadata"].get("labels", {}))]
            if not chosen:
                errors.append(f"selector: {name(o)} selects no Service")
            for ep in o["spec"]["endpoints"]:
                for s in chosen:
                    if ep["port"] not in {p.get("name") for p in s["spec"]["ports"]}:
                        errors.append(f"port: {name(o)} scrapes port {ep['port']!r}, not a port of {name(s)}")
        elif kind == "StatefulSet":
            svc = services.get(o["spec"].get("serviceName"))
            if svc is None:
                errors.append(f"selector: {name(o)}: serviceName {o['spec'].get('serviceName')!r} is no Service")
            elif svc["spec"].get("clusterIP") != "None":
                errors.append(f"selector: {name(o)}: its Service {name(svc)} is not headless")


def available(objs, secrets_dir):
    """name -> set of keys, for ConfigMaps and Secrets."""
    have = {"ConfigMap": {}, "Secret": {}}
    for o in objs:
        if o["kind"] in have:
            keys = set(o.get("data", {})) | set(o.get("stringData", {})) | set(o.get("binaryData", {}))
            have[o["kind"]][o["metadata"]["name"]] = keys
    if secrets_dir:
        for d in sorted(os.listdir(secrets_dir)):
            if os.path.isdir(os.path.join(secrets_dir, d)):
                have["Secret"].setdefault(d, set(os.listdir(os.path.join(secrets_dir, d))))
    return have


def check_references(objs, secrets_dir, errors):
    have = available(objs, secrets_dir)

    def need(kind, ref, key, where):
        if ref not in have[kind]:
            errors.append(f"reference: {where} names {kind} {ref!r}, which does not exist")
        elif key is not None and key not in have[kind][ref]:
            errors.append(f"reference: {where} names key {key!r} of {kind} {ref!r}, which it lacks")

    for w, tpl in pods(objs):
        for v in tpl["spec"].get("volumes", []):
            for kind, field, ref in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                if field in v:
                    src = v[field]
                    need(kind, src[ref], None, f"{name(w)} volume {v['name']}")
                    for item in src.get("items", []):
                        need(kind, src[ref], item["key"], f"{name(w)} volume {v['name']}")
        for c in containers(tpl):
            for e in c.get("env", []):
                vf = e.get("valueFrom", {})
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if field in vf:
                        need(kind, vf[field]["name"], vf[field]["key"], f"{name(w)} env {e['name']}")
            for ef in c.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in ef:
                        need(kind, ef[field]["name"], None, f"{name(w)} envFrom")


def container_ports(tpl):
    return {p.get("name"): p["containerPort"] for c in containers(tpl) for p in c.get("ports", [])}


def check_ports(objs, errors):
    templates = pods(objs)
    for w, tpl in templates:
        ports = container_ports(tpl)
        for c in containers(tpl):
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                p = c.get(probe)
                if not p:
                    continue
                handler = p.get("httpGet") or p.get("tcpSocket") or {}
                port = handler.get("port")
                if port is None:
                    continue
                if isinstance(port, str) and port not in ports:
                    errors.append(f"port: {name(w)} {c['name']} {probe} uses port {port!r}, no container port")
                if isinstance(port, int) and port not in ports.values():
                    errors.append(f"port: {name(w)} {c['name']} {probe} uses port {port}, no container port")
    for o in objs:
        if o["kind"] == "Service":
            reached = [t for _, t in templates if matches(o["spec"].get("selector"), t["metadata"].get("labels", {}))]
            for p in o["spec"]["ports"]:
                tp = p.get("targetPort", p["port"])
                for t in reached:
                    ports = container_ports(t)
                    if (isinstance(tp, str) and tp not in ports) or (isinstance(tp, int) and tp not in ports.values()):
                        errors.append(f"port: {name(o)} targets port {tp!r}, not a container port of its pods")
        if o["kind"] == "NetworkPolicy":
            reached = [t for _, t in templates if matches(o["spec"]["podSelector"], t["metadata"].get("labels", {}))]
            for rule in o["spec"].get("ingress", []):
                for p in rule.get("ports", []):
                    for t in reached:
                        if isinstance(p.get("port"), str) and p["port"] not in container_ports(t):
                            errors.append(f"port: {name(o)} allows port {p['port']!r}, not a container port of its pods")


def check_probes(objs, probes, errors):
    for w, tpl in pods(objs):
        for c in containers(tpl):
            process = process_of(c)
            allowed = probes.get(process, set()) if is_loam(c) else ETCD_PROBES
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                http = (c.get(probe) or {}).get("httpGet")
                if http and http["path"] not in allowed:
                    errors.append(
                        f"probe: {name(w)} {c['name']} {probe} path {http['path']!r} is not an endpoint of "
                        f"{process or c['image']} (known: {sorted(allowed)})")


def pod_files(objs, tpl, c, root):
    """Lays out under root the files the container sees from ConfigMaps and Secrets (with their keys)."""
    data = {}
    for o in objs:
        if o["kind"] in ("ConfigMap", "Secret"):
            data[(o["kind"], o["metadata"]["name"])] = o
    volumes = {v["name"]: v for v in tpl["spec"].get("volumes", [])}
    for m in c.get("volumeMounts", []):
        v = volumes.get(m["name"], {})
        for kind, field, ref in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
            if field not in v or (kind, v[field][ref]) not in data:
                continue
            src = data[(kind, v[field][ref])]
            items = v[field].get("items") or [{"key": k, "path": k} for k in src.get("data", {})]
            for item in items:
                value = src.get("data", {}).get(item["key"], "")
                if kind == "Secret":
                    import base64
                    value = base64.b64decode(value).decode()
                if m.get("subPath"):
                    if item["path"] != m["subPath"]:
                        continue
                    dest = root + m["mountPath"]
                else:
                    dest = os.path.join(root + m["mountPath"], item["path"])
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "w") as f:
                    f.write(value)


def check_configs(objs, loam, secrets_dir, errors, warnings):
    objs = objs + secret_objects(secrets_dir)
    for w, tpl in pods(objs):
        for c in containers(tpl):
            process = process_of(c)
            args = c.get("args", [])
            if process not in ("coordinator", "worker") or "--config" not in args:
                continue
            config = args[args.index("--config") + 1]
            with tempfile.TemporaryDirectory() as root:
                pod_files(objs, tpl, c, root)
                path = root + config
                if not os.path.exists(path):
                    errors.append(f"config: {name(w)} {c['name']}: {config} is not mounted from a ConfigMap")
                    continue
                text = open(path).read()
                # The pod's absolute paths, under this copy of its files.
                text = re.sub(r'"(/etc/loam|/var/lib/loam)', lambda m: '"' + root + m.group(1), text)
                rest = args[1:args.index("--config")] + args[args.index("--config") + 2:]
                with open(path, "w") as f:
                    f.write(text)
                # The container's environment too (values from the pod or a Secret as stand-ins): settings
                # such as LOAM_ADVERTISE_HOST come from there.
                env = {"PATH": os.environ.get("PATH", "")}
                for e in c.get("env", []):
                    value = e.get("value")
                    env[e["name"]] = re.sub(r"\$\((\w+)\)", "x", value) if value is not None else "x"
                out = subprocess.run([loam, process, "--config", path, *rest, "--print-config"],
                                     capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    err = out.stderr.strip().replace(root, "")
                    errors.append(f"config: {name(w)} {c['name']}: `loam {process} --print-config` refuses {config}: {err}")


def secret_objects(secrets_dir):
    """The Secrets of make-secrets.sh's output, as objects (base64 data)."""
    import base64
    out = []
    if secrets_dir:
        for d in sorted(os.listdir(secrets_dir)):
            p = os.path.join(secrets_dir, d)
            if os.path.isdir(p):
                data = {k: base64.b64encode(open(os.path.join(p, k), "rb").read()).decode() for k in os.listdir(p)}
                out.append({"kind": "Secret", "metadata": {"name": d}, "data": data})
    return out


def check_security(objs, errors):
    for w, tpl in pods(objs):
        pod_sc = tpl["spec"].get("securityContext", {})
        for c in containers(tpl):
            sc = c.get("securityContext", {})
            if process_of(c) == "fuse":
                continue
            problems = []
            if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
                problems.append("runAsNonRoot")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) != 65532:
                problems.append("runAsUser 65532")
            if not sc.get("readOnlyRootFilesystem"):
                problems.append("readOnlyRootFilesystem")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append("allowPrivilegeEscalation false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append("capabilities drop ALL")
            if sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type") != "RuntimeDefault":
                problems.append("seccompProfile RuntimeDefault")
            if sc.get("privileged"):
                problems.append("not privileged")
            if problems:
                errors.append(f"security: {name(w)} {c['name']} lacks: {', '.join(problems)}")
            if process_of(c) == "worker":
                hook = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
                if hook != PRESTOP:
                    errors.append(f"security: {name(w)} {c['name']}: preStop is {hook}, not {PRESTOP}")


def check(argv):
    import argparse

    ap = argparse.ArgumentParser(prog="k8s_manifests.py check")
    ap.add_argument("render")
    ap.add_argument("--loam", required=True)
    ap.add_argument("--probe", action="append", default=[])
    ap.add_argument("--secrets")
    a = ap.parse_args(argv)
    probes = {}
    for p in a.probe:
        process, path = p.split("=", 1)
        probes.setdefault(process, set()).add(path)
    objs = load(a.render)
    errors, warnings = [], []
    check_schema(objs, errors)
    check_selectors(objs, errors)
    check_references(objs, a.secrets, errors)
    check_ports(objs, errors)
    check_probes(objs, probes, errors)
    check_configs(objs, a.loam, a.secrets, errors, warnings)
    check_security(objs, errors)
    for w in warnings:
        print(f"warning: {w}")
    for e in errors:
        print(e)
    print(f"checked {len(objs)} objects: {len(errors)} problems")
    return 1 if errors else 0


def find(objs, kind, obj_name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == obj_name)


def worker_container(objs):
    w = next(o for o in objs if o["kind"] in WORKLOADS and o["metadata"]["name"] == "loam-worker")
    return w["spec"]["template"]["spec"]["containers"][0]


def mutate(what, objs):
    """Breaks one fact; each mutation must make exactly its check fail."""
    if what == "schema":
        find(objs, "Service", "loam-coordinator")["spec"]["sessionAffinty"] = "None"
    elif what == "selector":
        find(objs, "Service", "loam-coordinator")["spec"]["selector"]["app.kubernetes.io/component"] = "coordinater"
    elif what == "headless":
        find(objs, "Service", "loam-worker")["spec"].pop("clusterIP")
    elif what == "secret":
        c = worker_container(objs)
        next(e for e in c["env"] if e["name"] == "LOAM_S3_SECRET_KEY")["valueFrom"]["secretKeyRef"]["key"] = "secret"
    elif what == "configmap":
        w = find(objs, "Deployment", "loam-coordinator")
        next(v for v in w["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")["configMap"]["name"] = "loam-conf"
    elif what == "port":
        find(objs, "Service", "loam-s3")["spec"]["ports"][0]["targetPort"] = "s3api"
    elif what == "probe-port":
        worker_container(objs)["livenessProbe"]["httpGet"]["port"] = "metrics"
    elif what == "probe-path":
        worker_container(objs)["readinessProbe"]["httpGet"]["path"] = "/v1/healthz"
    elif what == "config":
        cm = find(objs, "ConfigMap", "loam-config")
        cm["data"]["worker.toml"] += '\ncache-size = "lots"\n'
    elif what == "security":
        worker_container(objs)["securityContext"]["readOnlyRootFilesystem"] = False
    elif what == "prestop":
        worker_container(objs)["lifecycle"]["preStop"]["exec"]["command"] = ["loam", "worker", "drain"]
    else:
        raise SystemExit(f"unknown mutation {what}")
    return objs


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2:]))
    if len(sys.argv) == 5 and sys.argv[1] == "break":
        objs = mutate(sys.argv[2], copy.deepcopy(load(sys.argv[3])))
        with open(sys.argv[4], "w") as f:
            yaml.safe_dump_all(objs, f, sort_keys=False)
        return
    print(__doc__)
    sys.exit(2)


if __name__ == "__main__":
    main()
