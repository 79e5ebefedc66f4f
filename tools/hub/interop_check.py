#!/usr/bin/env python3
"""Checks that Ember and the reference huggingface_hub share one cache layout, byte for byte.

Serves tests/fixtures/hub/tiny-st like the Hub does (API listing, resolve URLs with X-Repo-Commit,
ETags, LFS redirects to a CDN on another loopback address), then:
  1. huggingface_hub downloads the model's files into cache A; `ember download` into cache B;
  2. the two trees must be identical: paths, symlink targets, refs, blob names and contents;
  3. each tool, offline, must find every file in the other's cache.
Loopback only. Run with the pinned reference (tools/setup_venv.sh):
    tools/.venv/bin/python tools/hub/interop_check.py build/bin/ember
"""
import hashlib
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "hub"
REPO = "ember-test/tiny-st"
COMMIT = "1" * 40
# What `ember download` (hub_model) selects for this repo: every file but README.md and onnx/.
MODEL_FILES = ["config.json", "tokenizer.json", "vocab.txt", "modules.json",
               "sentence_bert_config.json", "model.safetensors", "1_Pooling/config.json",
               "2_Dense/config.json", "2_Dense/model.safetensors"]


def serve(manifest):
    files = {name: ((FIXTURES / "tiny-st" / name).read_bytes(), info)
             for name, info in manifest["tiny-st"].items()}
    by_sha = {info["sha256"]: data for data, info in files.values()}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_HEAD(self):
            self.answer(False)

        def do_GET(self):
            self.answer(True)

        def send(self, code, headers, body, with_body):
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def answer(self, with_body):
            path = self.path.split("?")[0]
            if path == "/api/models/%s/revision/main" % REPO:
                body = json.dumps({"id": REPO, "sha": COMMIT,
                                   "siblings": [{"rfilename": f} for f in files]}).encode()
                return self.send(200, {"Content-Type": "application/json"}, body, with_body)
            prefix = "/%s/resolve/" % REPO
            if path.startswith(prefix):
                _, name = path[len(prefix):].split("/", 1)
                if name not in files:
                    return self.send(404, {"X-Error-Code": "EntryNotFound"}, b"", with_body)
                data, info = files[name]
                headers = {"X-Repo-Commit": COMMIT}
                if info["lfs"]:
                    headers.update({"X-Linked-Etag": '"%s"' % info["sha256"],
                                    "X-Linked-Size": str(len(data)),
                                    "ETag": '"%s"' % info["git_sha1"],
                                    "Location": "%s/cdn/%s" % (cdn_url, info["sha256"])})
                    return self.send(302, headers, b"", with_body)
                headers["ETag"] = '"%s"' % info["git_sha1"]
                return self.send(200, headers, data, with_body)
            if path.startswith("/cdn/") and path[5:] in by_sha:
                return self.send(200, {}, by_sha[path[5:]], with_body)
            return self.send(404, {}, b"", with_body)

    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # The CDN is another host, as on the real Hub (127.0.0.2 is loopback too).
    cdn = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    cdn_url = "http://127.0.0.2:%d" % cdn.server_address[1]
    for server in (hub, cdn):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % hub.server_address[1]


def listing(cache):
    out = {}
    for path in sorted(Path(cache).rglob("*")):
        rel = str(path.relative_to(cache))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif rel == "CACHEDIR.TAG":  # only the signature line is prescribed; comments differ
            out[rel] = path.read_text().splitlines()[0]
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def main():
    ember = Path(sys.argv[1]).resolve()
    endpoint = serve(json.loads((FIXTURES / "manifest.json").read_text()))
    work = Path(tempfile.mkdtemp(prefix="ember-hub-interop-"))
    hf_cache, ember_cache = work / "hf", work / "ember"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    base_env.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1")

    def python(cache, code, offline=False):
        env = dict(base_env, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1" if offline else "0")
        return subprocess.run([sys.executable, "-c", code], env=env, check=True,
                              capture_output=True, text=True).stdout.split()

    def run_ember(cache, args, offline=False):
        env = dict(base_env, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1" if offline else "0")
        return subprocess.run([str(ember), "download", REPO, *args], env=env, check=True,
                              capture_output=True, text=True).stdout.split()

    download = ("from huggingface_hub import hf_hub_download\n"
                "for f in %r: print(hf_hub_download(%r, f))" % (MODEL_FILES, REPO))
    python(hf_cache, download)
    run_ember(ember_cache, [])

    a, b = listing(hf_cache), listing(ember_cache)
    ok = True
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            ok = False
            print("differs: %s  huggingface_hub=%s  ember=%s" % (key, a.get(key), b.get(key)))
    ember_found = run_ember(hf_cache, MODEL_FILES, offline=True)
    hf_found = python(ember_cache, download, offline=True)
    expected = lambda cache: [str(cache / ("models--" + REPO.replace("/", "--")) / "snapshots" / COMMIT / f)
                              for f in MODEL_FILES]
    if ember_found != expected(hf_cache):
        ok = False
        print("ember offline in huggingface_hub's cache found", ember_found)
    if hf_found != expected(ember_cache):
        ok = False
        print("huggingface_hub offline in Ember's cache found", hf_found)
    import huggingface_hub
    print("huggingface_hub %s and Ember: %s (%d entries compared)" %
          (huggingface_hub.__version__, "same cache layout" if ok else "DIFFERENT", len(a)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
