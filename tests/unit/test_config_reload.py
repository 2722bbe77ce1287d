"""Config hot reload: applied between batches, bad configs rejected, restart-only keys kept."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from detector.metrics import Metrics
from detector.pipeline import Detector
from detector.runtime.local import ConfigWatch
from detector.settings import load


def _runtime(cfg: Path) -> SimpleNamespace:
    settings = load(cfg, env={})
    metrics = Metrics.create(CollectorRegistry())
    return SimpleNamespace(settings=settings, detector=Detector(settings, None, {}), metrics=metrics, model_watch=None)


def _count(rt: SimpleNamespace, result: str) -> float:
    return rt.metrics.config_reloads.labels(result)._value.get()


def test_valid_change_is_applied_and_bad_one_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detection:\n  defaults: {recon_novel_apis: 12}\n")
    rt = _runtime(cfg)
    watch = ConfigWatch(cfg, rt)  # type: ignore[arg-type]
    cfg.write_text("detection:\n  defaults: {recon_novel_apis: 40}\n")
    watch.hup.set()
    watch.check(0.0)
    assert rt.detector.resolver.for_principal("k", "", "human").recon_novel_apis == 40
    assert _count(rt, "ok") == 1
    cfg.write_text("detection:\n  defaults: {recon_novel_apiz: 5}\n")
    watch.hup.set()
    watch.check(1.0)
    assert _count(rt, "rejected") == 1
    assert rt.settings.detection.defaults.recon_novel_apis == 40  # the running config stays
    assert rt.detector.resolver.for_principal("k2", "", "human").recon_novel_apis == 40


def test_file_change_is_noticed_without_a_signal(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("alerts: {dedup_window_s: 3600}\n")
    rt = _runtime(cfg)
    watch = ConfigWatch(cfg, rt, interval_s=0.0)  # type: ignore[arg-type]
    watch.check(0.0)
    assert _count(rt, "ok") == 0  # unchanged file: nothing to do
    cfg.write_text("alerts: {dedup_window_s: 60}\n# changed\n")
    watch.check(1.0)
    assert rt.settings.alerts.dedup_window_s == 60 and _count(rt, "ok") == 1


def test_restart_only_keys_are_kept(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("metrics: {port: 9108}\n")
    rt = _runtime(cfg)
    watch = ConfigWatch(cfg, rt)  # type: ignore[arg-type]
    cfg.write_text(
        "metrics: {port: 9999}\nsuppressions: [{kind: '*', principal: 'x', until: 2099-01-01, reason: test}]\n"
    )
    assert watch.reload()
    assert rt.settings.metrics.port == 9108
    assert len(rt.settings.suppressions) == 1
