"""Which pods are dedicated-CPU pods (CONTRACT §3): one definition for the mutator and the validator."""

from __future__ import annotations

from typing import Any

from webhook.config import Config

GUARANTEED_QOS_ANNOTATION = "vm-admission.io/guaranteed-qos"


def is_dedicated_pod(pod: dict[str, Any], config: Config) -> bool:
    """True for pods that must reach Guaranteed QoS: the opt-in annotation, or a CPU-manager node selector.

    The annotation value ``"false"`` opts a pod out even when its node selector matches.
    """
    meta = pod.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(annotations, dict):
        flag = annotations.get(GUARANTEED_QOS_ANNOTATION)
        if flag == "false":
            return False
        if flag == "true":
            return True
    spec = pod.get("spec")
    selector = spec.get("nodeSelector") if isinstance(spec, dict) else None
    if not isinstance(selector, dict):
        return False
    # A loop, not any(<generator>): this runs for every Pod, and compiled a generator costs an object.
    for label, value in config.cpuManager.labels.items():  # noqa: SIM110
        if selector.get(label) == value:
            return True
    return False
