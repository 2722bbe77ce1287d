"""Issue 12 items 12-14 end to end: webhook URLs in ``config check`` and ``run``, secrets in
logs and metrics, and attacker text in Slack-formatted alerts.

* ``config check`` on webhook URLs that must be refused (bad scheme, link-local and metadata
  addresses in several spellings, a bearer token over plain http) and on good ones; the secret
  part of each URL must not appear in the output;
* ``detector run`` delivering to ``http://alice:PASSWORD123@127.0.0.1:<port>/SECRETPATH``
  answering 500: neither the password nor the path may reach stderr, the spool or /metrics;
* the same run with ``format: slack`` to a 200 receiver, on events whose user agent and session
  name carry ``<!here>``, ``<https://evil.example/|Click>``, ``[login](https://evil.example/)``
  and ``@channel``: the text posted must hold none of them unescaped.

Usage: PYTHONPATH=. python bench/probes/secrets.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from bench.probes import common

REFUSE = {
    "bad_scheme": "htps://hooks.slack.com/services/T000/B000/SECRETXYZ",
    "metadata_ip": "http://169.254.169.254/latest/meta-data/SECRETXYZ",
    "metadata_ip_trailing_dot": "http://169.254.169.254./SECRETXYZ",
    "metadata_ipv4_mapped_v6": "http://[::ffff:169.254.169.254]/SECRETXYZ",
    "link_local_v6": "http://[fe80::1%25eth0]/SECRETXYZ",
    "ec2_metadata_v6": "http://[fd00:ec2::254]/SECRETXYZ",
    "gcp_metadata_name": "http://metadata.google.internal/computeMetadata/SECRETXYZ",
    "no_host": "http:///SECRETXYZ",
    "bad_port": "http://hooks.example:99999/SECRETXYZ",
}
ACCEPT = {
    "https": "https://hooks.slack.com/services/T000/B000/SECRETXYZ",
    "http_loopback_with_token": "http://127.0.0.1:9/SECRETXYZ",
}
HOSTILE = ["<!here>", "<https://evil.example/|Click here>", "[login](https://evil.example/)", "@channel", "<!channel>"]


def check(tmp: Path, name: str, url: str, token: bool = False) -> dict[str, Any]:
    cfg = tmp / f"check-{name}.yaml"
    tok = ', token: "SECRETTOKEN"' if token else ""
    cfg.write_text(f'sinks: [{{kind: webhook, url: "{url}"{tok}}}]\nsource: {{kind: simulate}}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "config", "check", str(cfg)], env=common.env(), capture_output=True
    )
    out = proc.stdout + proc.stderr
    return {
        "exit": proc.returncode,
        "leaks_secret": b"SECRET" in out,
        "traceback": b"Traceback" in out,
        "line": out.decode(errors="replace").strip().splitlines()[-1][:160] if out.strip() else "",
    }


class Receiver:
    def __init__(self, status: int) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def hostile_archive(path: Path) -> None:
    """One principal's sensitive first-use calls (they alert), its fields full of Slack syntax."""
    records = []
    for i, api in enumerate(["StopLogging", "DeleteTrail", "PutBucketPolicy", "CreateAccessKey"]):
        records.append(
            {
                "eventVersion": "1.08",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_767_225_600 + 60 * i)),
                "eventSource": "cloudtrail.amazonaws.com",
                "eventName": api,
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.7",
                "userAgent": " ".join(HOSTILE),
                "eventID": f"hostile-{i}",
                "recipientAccountId": "111122223333",
                "userIdentity": {
                    "type": "IAMUser",
                    "accountId": "111122223333",
                    "arn": f"arn:aws:iam::111122223333:user/{HOSTILE[0]}{HOSTILE[3]}",
                    "userName": f"{HOSTILE[0]}{HOSTILE[3]}",
                },
                "requestParameters": {"bucketName": HOSTILE[2]},
            }
        )
    path.write_bytes(orjson.dumps({"Records": records}))


def run_with(tmp: Path, name: str, url: str, fmt: str, archive: Path) -> tuple[common.Run, bytes]:
    port = common_free_port()
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(
        f"""
model: {tmp / "no-model"}
state_dir: {tmp / name / "state"}
source: {{kind: file, paths: ["{archive}"]}}
sinks: [{{kind: webhook, url: "{url}", format: {fmt}, max_retries: 1, timeout_s: 2}}]
metrics: {{port: {port}}}
"""
    )
    run = common.Run(cfg)
    time.sleep(1.0)
    if run.proc.poll() is not None:
        raise SystemExit(f"run {name} exited ({run.proc.returncode}):\n{run.tail()}")
    deadline = time.monotonic() + 30
    metrics = b""
    while time.monotonic() < deadline and run.proc.poll() is None:
        if any(b"sink" in line and (b"fail" in line or b"deliver" in line) for line in run.log) or any(
            b'"event": "alert' in line for line in run.log
        ):
            break
        time.sleep(0.2)
    time.sleep(3)  # a retry or two
    try:
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError as exc:
        metrics = f"metrics unreachable: {exc}".encode()
    run.stop()
    return run, metrics


def common_free_port() -> int:
    from tests.services import free_port

    return free_port()


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="probe-secrets-"))
    report: dict[str, Any] = {"config_check_refused": {}, "config_check_accepted": {}}
    for name, url in REFUSE.items():
        report["config_check_refused"][name] = check(tmp, name, url)
    report["config_check_refused"]["token_over_http"] = check(tmp, "token", "http://hooks.example/SECRETXYZ", True)
    for name, url in ACCEPT.items():
        report["config_check_accepted"][name] = check(tmp, name, url, token=name.endswith("token"))

    archive = tmp / "hostile.json"
    hostile_archive(archive)
    failing = Receiver(500)
    run, metrics = run_with(
        tmp, "leak", f"http://alice:PASSWORD123@127.0.0.1:{failing.port}/SECRETPATH", "json", archive
    )
    logged = b"".join(run.log)
    spool = b"".join(p.read_bytes() for p in (tmp / "leak").rglob("*") if p.is_file() and "checkpoint" not in p.name)
    report["webhook_500"] = {
        "posts_received": len(failing.bodies),
        "sink_failure_logged": b"sink" in logged and b"500" in logged,
        "password_in_logs": b"PASSWORD123" in logged,
        "path_in_logs": b"SECRETPATH" in logged,
        "password_in_metrics": b"PASSWORD123" in metrics,
        "path_in_metrics": b"SECRETPATH" in metrics,
        "secret_in_state_dir": b"PASSWORD123" in spool or b"SECRETPATH" in spool,
        "tracebacks": run.tracebacks(),
    }

    ok_receiver = Receiver(200)
    run, _ = run_with(tmp, "slack", f"http://127.0.0.1:{ok_receiver.port}/hook", "slack", archive)
    texts = [json.loads(b)["text"] for b in ok_receiver.bodies]
    raw = re.compile(r"<!here>|<!channel>|<https://evil|\[login\]\(https|(?<![\w&])@channel")
    report["slack_format"] = {
        "posts": len(texts),
        "unescaped_tokens": sorted({m.group(0) for t in texts for m in raw.finditer(t)}),
        "double_escaped": any("&amp;lt;" in t or "\\\\x1b" in t for t in texts),
        "sample": texts[0][:300] if texts else "",
        "tracebacks": run.tracebacks(),
    }
    report["workdir"] = str(tmp)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    ok = (
        all(
            v["exit"] != 0 and not v["leaks_secret"] and not v["traceback"]
            for v in report["config_check_refused"].values()
        )
        and all(v["exit"] == 0 and not v["leaks_secret"] for v in report["config_check_accepted"].values())
        and not any(v for k, v in report["webhook_500"].items() if k.endswith(("_logs", "_metrics", "_dir")))
        and report["webhook_500"]["posts_received"] > 0
        and report["slack_format"]["posts"] > 0
        and not report["slack_format"]["unescaped_tokens"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
