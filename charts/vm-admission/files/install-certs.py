"""certificates.mode=generate: run by the chart's hook Jobs in the vm-admission image (which has the kubernetes client).

  install-certs.py secret  NAMESPACE SECRET DNS_NAME...   pre-install/pre-upgrade: `vm-admission certs` into a
                                                          Secret, unless it already holds a certificate (kept)
  install-certs.py inject  NAMESPACE SECRET WEBHOOKS      post-install/post-upgrade: the Secret's ca.crt as the
                                                          caBundle of both webhook configurations named WEBHOOKS
"""

import base64
import subprocess
import sys
import tempfile
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def secret(core, namespace, name, dns_names):
    try:
        existing = core.read_namespaced_secret(name, namespace)
        if existing.data and {"ca.crt", "tls.crt", "tls.key"} <= existing.data.keys():
            print(f"secret {namespace}/{name} holds a certificate: kept")
            return
    except ApiException as exc:
        if exc.status != 404:
            raise
        existing = None
    out = Path(tempfile.mkdtemp())
    args = [arg for dns in dns_names for arg in ("--dns-name", dns)]
    subprocess.run(["vm-admission", "certs", *args, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    data = {f: base64.b64encode((out / f).read_bytes()).decode() for f in ("ca.crt", "tls.crt", "tls.key")}
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, namespace=namespace), type="kubernetes.io/tls", data=data)
    if existing is None:
        core.create_namespaced_secret(namespace, body)
    else:
        core.replace_namespaced_secret(name, namespace, body)
    print(f"secret {namespace}/{name}: certificate for {', '.join(dns_names)} written")


def inject(core, namespace, name, webhooks):
    ca = core.read_namespaced_secret(name, namespace).data["ca.crt"]
    api = client.AdmissionregistrationV1Api()
    for read, patch in (
        (api.read_mutating_webhook_configuration, api.patch_mutating_webhook_configuration),
        (api.read_validating_webhook_configuration, api.patch_validating_webhook_configuration),
    ):
        current = read(webhooks)
        body = []  # a JSON patch (a list body is sent as one by every client version); test guards the index
        for i, w in enumerate(current.webhooks):
            body.append({"op": "test", "path": f"/webhooks/{i}/name", "value": w.name})
            body.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": ca})
        patch(webhooks, body)
        print(f"{current.kind or 'webhook configuration'} {webhooks}: caBundle set")


def main(argv):
    config.load_incluster_config()
    core = client.CoreV1Api()
    command, namespace, name, *rest = argv
    if command == "secret":
        secret(core, namespace, name, rest)
    elif command == "inject":
        inject(core, namespace, name, rest[0])
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
