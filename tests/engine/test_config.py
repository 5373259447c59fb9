"""The webhook's config file: defaults, and errors that name the key (webhook.config)."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.config import ConfigError, load_config, parse_config


def test_config_defaults_and_errors_name_the_key(tmp_path: Any) -> None:
    cfg = load_config(None)
    assert (cfg.sidecars.cpu, cfg.sidecars.memory, cfg.passthrough.maxCount) == ("200m", "64M", 8)
    assert cfg.cpuManager.labels == {"kubevirt.io/cpumanager": "true", "cpumanager": "true"}
    bad = tmp_path / "c.yaml"
    bad.write_text("cpuManager:\n  enable: true\nsidecars:\n  cpu: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "cpuManager.enable: unknown key" in str(err.value)
    assert "sidecars.cpu" in str(err.value)
    with pytest.raises(ConfigError, match="not valid YAML"):
        bad.write_text("a: [")
        load_config(bad)
    assert parse_config({"cpuManager": {"nodeSelectorLabels": {"x": "y"}}}).cpuManager.labels == {"x": "y"}
