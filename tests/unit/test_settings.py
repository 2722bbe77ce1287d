"""Config: defaults, file + env merge, and errors that name the file and key."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from detector.errors import ConfigError
from detector.settings import Settings, ThresholdResolver, load

ROOT = Path(__file__).resolve().parents[2]


def _keys(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, name) of every key the config accepts, nested models and lists included."""
    for name, info in model.model_fields.items():
        here = f"{path}.{name}" if path else name
        yield here, name
        nested = [info.annotation, *typing.get_args(info.annotation)]
        nested += [inner for outer in nested[1:] for inner in typing.get_args(outer)]
        for t in dict.fromkeys(nested):
            if isinstance(t, type) and issubclass(t, BaseModel):
                yield from _keys(t, here)


def test_shipped_config_is_valid_and_documents_every_key_with_its_default() -> None:
    s = load(ROOT / "config" / "detector.yaml", env={})
    text = (ROOT / "config" / "detector.yaml").read_text()
    for path, name in _keys(Settings):
        assert re.search(rf"\b{name}\b", text), f"config/detector.yaml does not document {path}"
    # "Every key is optional; the values below are the defaults": the file changes nothing.
    assert s == Settings()


def test_unknown_key_names_file_and_path(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("detection:\n  defaults:\n    getobject_burst:\n      min_objcts: 5\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: detection\.defaults\.getobject_burst\.min_objcts: unknown key"):
        load(f, env={})


def test_wrong_type_names_the_key_and_value(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("pipeline:\n  batch_size: lots\n")
    with pytest.raises(ConfigError, match=r"pipeline\.batch_size: .*'lots'"):
        load(f, env={})


def test_bad_yaml_and_non_mapping_are_errors(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(f, env={})
    f.write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load(f, env={})


def test_env_overrides_nested_keys_and_are_validated(tmp_path: Path) -> None:
    s = load(None, env={"DETECTOR_PIPELINE__BATCH_SIZE": "64", "DETECTOR_MODEL_KEY": "not-config"})
    assert s.pipeline.batch_size == 64
    # list fields take a plain or comma-separated value from the environment, or YAML's [a, b]
    for raw, paths in (("/x", ("/x",)), ("/x, /y", ("/x", "/y")), ("[/x, /y]", ("/x", "/y"))):
        s = load(None, env={"DETECTOR_SOURCE__PATHS": raw, "DETECTOR_SOURCE__REGIONS": "us-east-1,eu-west-1"})
        assert s.source.paths == paths and s.source.regions == ("us-east-1", "eu-west-1")
    with pytest.raises(ConfigError, match="environment"):
        load(None, env={"DETECTOR_PIPELINE__BATCH_SIZ": "64"})


def test_class_and_override_blocks_are_validated_as_thresholds(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("detection:\n  overrides:\n    - role: '*batch*'\n      set: {recon_novel_apis: -3}\n")
    with pytest.raises(ConfigError, match=r"detection\.overrides\.0\.set\.recon_novel_apis"):
        load(f, env={})


def test_thresholds_resolve_defaults_then_class_then_override(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "detection:\n"
        "  classes:\n    automation: {recon_novel_apis: 30}\n"
        "  overrides:\n    - role: 'arn:aws:iam::*:role/nightly-*'\n"
        "      set: {getobject_burst: {min_objects: 50000}}\n"
    )
    r = ThresholdResolver(load(f, env={}).detection)
    human = r.for_principal("arn:aws:iam::1:user/a", "", "human")
    batch = r.for_principal("arn:aws:iam::1:role/nightly-etl", "arn:aws:iam::1:role/nightly-etl", "automation")
    other = r.for_principal("arn:aws:iam::1:role/web", "arn:aws:iam::1:role/web", "automation")
    assert human.recon_novel_apis == 12 and other.recon_novel_apis == 30
    assert batch.getobject_burst.min_objects == 50000 and other.getobject_burst.min_objects == 500


def test_secrets_are_masked(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("sinks:\n  - {kind: webhook, url: 'http://127.0.0.1:1/x', token: hunter2}\n")
    shown = str(load(f, env={}).masked())
    assert "hunter2" not in shown and "**********" in shown


def test_suppression_requires_reason_and_expiry(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("suppressions:\n  - {kind: recon_burst, principal: '*'}\n")
    with pytest.raises(ConfigError, match=r"suppressions\.0\.(until|reason)"):
        load(f, env={})


def test_sensitive_reads_must_be_sensitive_only_when_given(tmp_path: Path) -> None:
    own = tmp_path / "own.yaml"
    own.write_text("detection:\n  sensitive_apis: [StopLogging, DeleteTrail]\n")
    assert load(own, env={}).detection.sensitive_apis == ("StopLogging", "DeleteTrail")  # default reads: ignored
    stray = tmp_path / "stray.yaml"
    stray.write_text("detection:\n  sensitive_apis: [StopLogging]\n  sensitive_reads: [GetSecretValue]\n")
    with pytest.raises(ConfigError, match=r"stray\.yaml: detection: .*not there: GetSecretValue"):
        load(stray, env={})


def test_kafka_compression_reaches_the_bridge_and_worker_producers(tmp_path: Path) -> None:
    from detector.runtime.bridge import producer_options
    from detector.runtime.faust_app import faust_settings

    default = load(None, env={})
    assert producer_options(default)["compression_type"] == "zstd"
    assert faust_settings(default, "w1")["producer_compression_type"] == "zstd"
    off = load(None, env={"DETECTOR_KAFKA__COMPRESSION": "none"})
    assert producer_options(off)["compression_type"] is None
    assert faust_settings(off, "w1")["producer_compression_type"] is None
    with pytest.raises(ConfigError, match=r"kafka\.compression"):
        load(None, env={"DETECTOR_KAFKA__COMPRESSION": "brotli"})
