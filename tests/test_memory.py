"""Peak memory stays bounded whatever servers send: endless bodies, decompression bombs, lying lengths.

The check runs in a subprocess that reports its own peak resident set size.
"""

from __future__ import annotations

import json
import subprocess
import sys

from hostile import HostileServer, brotli_bomb, endless_body, gzip_bomb, respond

LIMIT_MB = 500
CHILD = """
import json, resource, sys
from watcher.check import run_check
from watcher.config import load_config
from watcher.store import Store
store = Store.open(sys.argv[2])
summary = run_check(load_config(sys.argv[1]), store)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "outcomes": sorted({s.outcome for s in summary.sources})}))
"""


def test_peak_memory_stays_bounded_whatever_servers_send(tmp_path):
    cap = 5_000_000  # the default max_size
    behaviours = {
        "endless": endless_body(),
        "gzip": gzip_bomb(),
        "brotli": brotli_bomb(2048),
        "lying": respond(b"<p>" + b"x" * 4_000_000, content_length=50_000_000_000),
        # Bodies just under the cap, cheap to record: they measure how many bodies are held at once.
        "under-the-cap": respond(b"<html><body><p>Policy.</p><!--" + b"x" * (cap - 100) + b"--></body></html>"),
    }
    dense = respond(b"<html><body>" + b"<p>policy text</p>" * ((cap - 40) // 18) + b"</body></html>")
    with HostileServer() as server:
        sources = ""
        for kind, behaviour in behaviours.items():
            for i in range(16):  # 16 fetches in flight, each streaming up to the cap
                server.route(f"/{kind}{i}", behaviour)
                sources += f"  {kind}{i}:\n    url: {server.url(f'/{kind}{i}')}\n"
        server.route("/dense", dense)  # the most elements a page under the cap can hold, parsed whole
        sources += f"  dense:\n    url: {server.url('/dense')}\n"
        config = tmp_path / "sources.yaml"
        config.write_text(f"settings:\n  host_delay: 0s\n  per_host: 16\n  timeout: 20s\n  retries: 0\n"
                          f"sources:\n{sources}")
        child = subprocess.run([sys.executable, "-c", CHILD, str(config), str(tmp_path / "w.db")],
                               capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    measured = json.loads(child.stdout)
    print(f"\npeak RSS of a check of {len(behaviours) * 16 + 1} hostile sources: {measured['peak_mb']:.0f} MB")
    assert measured["outcomes"] == ["ok", "too_large"]
    assert measured["peak_mb"] < LIMIT_MB
