"""Typed configuration (CONTRACT §7): defaults that serve with no file, a YAML file that is validated whole.

Environment variables ``VM_ADMISSION_<KEY>`` (nested with ``__``, e.g. ``VM_ADMISSION_CPUMANAGER__ENABLED``)
override the file; a bad file raises :class:`ConfigError` naming every wrong key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from webhook.k8s import quantity

DEFAULT_NODE_SELECTOR_LABELS: dict[str, str] = {"kubevirt.io/cpumanager": "true", "cpumanager": "true"}
_SELECTOR_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")
# Extended resource name: a DNS subdomain prefix, "/", and a name (qualified-name rules, 63 chars).
_RESOURCE_RE = re.compile(
    r"^(?=.{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"/(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_PREFIX_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and every bad key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CpuManager(_Strict):
    enabled: bool = True
    nodeSelectorLabels: dict[str, str] | None = None  # replaces DEFAULT_NODE_SELECTOR_LABELS when set

    @property
    def labels(self) -> dict[str, str]:
        return DEFAULT_NODE_SELECTOR_LABELS if self.nodeSelectorLabels is None else self.nodeSelectorLabels


class Sidecars(_Strict):
    cpu: str = "200m"
    memory: str = "64M"

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, v: Any) -> str:
        text = v if isinstance(v, str) else str(v)
        q = quantity.parse(v)
        if q <= 0:
            raise ValueError("must be a positive quantity")
        return text


class PermittedDevice(_Strict):
    selector: str
    resourceName: str

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        if not _SELECTOR_RE.match(v):
            raise ValueError("must be VENDOR:DEVICE, 4 hex digits each, e.g. 10de:1eb8")
        return v.lower()

    @field_validator("resourceName")
    @classmethod
    def _resource(cls, v: str) -> str:
        if not _RESOURCE_RE.match(v):
            raise ValueError("must be an extended resource name such as nvidia.com/TU104GL_Tesla_T4")
        return v


class Passthrough(_Strict):
    resourcePrefix: str = "devices.kubevirt.io"
    permittedDevices: list[PermittedDevice] = Field(default_factory=list)
    permittedOnly: bool = False
    maxCount: int = Field(default=8, ge=1, le=1024)

    @field_validator("resourcePrefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _PREFIX_RE.match(v):
            raise ValueError("must be a DNS subdomain such as devices.kubevirt.io")
        return v

    def resource_for(self, vendor: str, device: str) -> str | None:
        """The permitted resource name for ``vendor:device`` (lower-case hex), or None when not listed."""
        sel = f"{vendor}:{device}"
        for entry in self.permittedDevices:
            if entry.selector == sel:
                return entry.resourceName
        return None


class KubeVirt(_Strict):
    # Used when spec.architecture is empty and the KubeVirt CR's status.defaultArchitecture is unknown.
    defaultArchitecture: str = "amd64"


class Cluster(_Strict):
    """The cluster view (CONTRACT §9): off by default; ``serve`` then needs no API server at all."""

    watch: bool = False
    # the preflight's node findings and the NAD findings: warnings, or 422 causes
    enforcement: Literal["enforce", "warn"] = "warn"
    syncTimeout: float = Field(default=30.0, ge=0, le=3600)  # /readyz waits at most this for the first sync
    kubeconfig: str | None = None  # None: in-cluster service account
    # How often a kind whose CRD is not installed (KubeVirt CRs, NADs) is looked for again, in seconds.
    crdRetry: float = Field(default=30.0, ge=0.1, le=3600)


class Networks(_Strict):
    """Secondary networks as devices (docs/networks.md)."""

    # Add the VF requests of SR-IOV attachments to pods (off where the Network Resources Injector runs with
    # -honor-resources, which adds to what is there; never doubled otherwise).
    inject: bool = True
    # The NAD annotation that names the device plugin resource (Multus, KubeVirt and the injector read this).
    resourceNameAnnotation: str = Field(default="k8s.v1.cni.cncf.io/resourceName", min_length=1)


class Config(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix="VM_ADMISSION_", env_nested_delimiter="__"
    )

    enforcement: Literal["enforce", "warn"] = "enforce"
    cpuManager: CpuManager = Field(default_factory=CpuManager)
    sidecars: Sidecars = Field(default_factory=Sidecars)
    passthrough: Passthrough = Field(default_factory=Passthrough)
    kubevirt: KubeVirt = Field(default_factory=KubeVirt)
    cluster: Cluster = Field(default_factory=Cluster)
    networks: Networks = Field(default_factory=Networks)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate a mapping (e.g. parsed YAML) into a :class:`Config`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return Config(**data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration:\n{_describe(exc)}") from None


def load_config(path: str | Path | None) -> Config:
    """Load and validate the YAML file at ``path``; defaults (and the environment) when ``path`` is None."""
    if path is None:
        return parse_config({}, "defaults")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    return parse_config(data, str(p))
