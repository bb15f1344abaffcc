"""Redis, the Rate Limit Service and several Envoy replicas on loopback: the
setup of `scope: cluster` rate limits, as `make run-cluster` starts it."""

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from harness import ROOT, Gateway, _live, free_port, stop

RLS = ROOT / "target/rls/release/llm-gateway-rls"


class Redis:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _live.append(self.proc)
        self.wait()

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args],
                              capture_output=True, text=True, timeout=10).stdout

    def wait(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("ping").strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def counters(self, rule):
        """The values of a limit's live counters (keys are binary: read in
        Redis itself)."""
        script = ("local out = {} for _, k in ipairs(redis.call('keys', ARGV[1])) do "
                  "if redis.call('type', k).ok == 'string' then "
                  "table.insert(out, redis.call('get', k)) end end return out")
        out = self.cli("eval", script, "0", f"*{rule}*")
        return sorted(int(v) for v in out.split())

    def stop(self):
        stop(self.proc)


class RateLimitService:
    def __init__(self, config_path: Path, redis: Redis, log: Path, port=None):
        if not RLS.exists():
            raise RuntimeError(f"missing {RLS}: run `make rls` (make test builds it)")
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = log
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [str(RLS), "--config", str(config_path), "--listen", self.address,
             "--redis", f"redis://127.0.0.1:{redis.port}", "--store-timeout-ms", "1000"],
            stdout=self.log, stderr=subprocess.STDOUT)
        _live.append(self.proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            if "listening on" in log.read_text():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"llm-gateway-rls exited: {log.read_text()}")
            time.sleep(0.05)
        raise RuntimeError("llm-gateway-rls did not start")

    def stop(self):
        stop(self.proc)
        self.log.close()
        return self.log_path.read_text()


class Cluster:
    """Redis + the service + `replicas` Envoys (each `--concurrency` workers)
    serving one gateway config whose rules may have scope cluster."""

    def __init__(self, config, tmp: Path, replicas=2, concurrency=2, timeout_ms=200,
                 failure_mode="deny"):
        tmp.mkdir(parents=True, exist_ok=True)
        self.redis = Redis()
        self.rls_port = free_port()
        config = dict(config)
        limits = dict(config.get("rate_limits") or {})
        limits["cluster"] = {**limits.get("cluster", {}),
                             "service": f"127.0.0.1:{self.rls_port}", "timeout_ms": timeout_ms,
                             "failure_mode": failure_mode}
        config["rate_limits"] = limits
        self.config_path = tmp / "cluster.yaml"
        import json
        self.config_path.write_text(json.dumps(config, indent=1))
        self.tmp = tmp
        self.rls = RateLimitService(self.config_path, self.redis, tmp / "rls.log",
                                    port=self.rls_port)
        self.replicas = []
        try:
            for i in range(replicas):
                self.replicas.append(Gateway(config, tmp / f"envoy{i}", concurrency=concurrency))
        except Exception:
            self.stop()
            raise

    def stat(self, replica, name):
        text = httpx.get(f"{replica.admin}/stats?filter={name}", timeout=5).text
        return sum(int(line.rsplit(": ", 1)[1]) for line in text.splitlines()
                   if line.rsplit(": ", 1)[1].isdigit())

    def stop(self):
        for gw in self.replicas:
            gw.stop()
        self.rls_log = self.rls.stop()
        self.redis.stop()
        return self.rls_log
