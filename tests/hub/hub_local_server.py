"""A Hugging Face Hub on 127.0.0.1 with the few endpoints `create_repo` + `upload_folder` call (huggingface_hub 2.x).

    POST /api/repos/create                               create_repo
    POST /api/models/{repo}/branch/{branch}              create_branch (push --revision)
    POST /api/validate-yaml                              the README.md metadata check create_commit runs first
    POST /api/models/{repo}/preupload/{revision}         upload mode per file: LFS for weights, regular otherwise
    POST /{repo}.git/info/lfs/objects/batch              LFS batch API, basic transfer: PUT to /lfs-objects/{oid}
    PUT  /lfs-objects/{oid}                              the LFS object (sha256 checked)
    POST /api/models/{repo}/commit/{revision}            the ndjson commit: header, file (base64), lfsFile (oid)

It keeps what arrives (repos, commits with their files, the tokens used) so tests can assert on it. The Xet
protocol is not served: tests set `HF_HUB_DISABLE_XET` so huggingface_hub takes its LFS path, which the real Hub
also accepts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

LFS_SUFFIXES = (".safetensors",)


@dataclass
class Commit:
    repo_id: str
    revision: str
    summary: str
    oid: str
    files: dict[str, bytes]
    lfs_paths: set[str]


@dataclass
class HubState:
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    branches: dict[str, set[str]] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    validated_readmes: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class LocalHub:
    """`with LocalHub() as hub:` serves on `hub.endpoint` until the block ends; `hub.state` holds what arrived."""

    def __init__(self, valid_tokens: tuple[str, ...] = ("hf_test_token",)):
        self.state = HubState()
        self.valid_tokens = valid_tokens
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            # -- plumbing ------------------------------------------------------------------------------------

            def body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def authorised(self) -> bool:
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip()
                if token:
                    hub.state.tokens.add(token)
                if token in hub.valid_tokens:
                    return True
                self.reply(401, {"error": "Invalid credentials in Authorization header"})
                return False

            # -- endpoints -----------------------------------------------------------------------------------

            def do_PUT(self) -> None:
                hub.state.requests.append(f"PUT {self.path}")
                match = re.fullmatch(r"/lfs-objects/([0-9a-f]{64})", self.path)
                data = self.body()
                if not match or hashlib.sha256(data).hexdigest() != match[1]:
                    return self.reply(400, {"error": "LFS object does not match its oid"})
                hub.state.lfs_objects[match[1]] = data
                self.reply(200, {})

            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                hub.state.requests.append(f"POST {path}")
                data = self.body()
                if path == "/api/validate-yaml":
                    return self.validate_yaml(json.loads(data))
                if not self.authorised():
                    return None
                if path == "/api/repos/create":
                    return self.create_repo(json.loads(data))
                if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/branch/([^/]+)", path):
                    hub.state.branches.setdefault(m[1], {"main"}).add(m[2])
                    return self.reply(200, {})
                if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", path):
                    return self.preupload(m[1], json.loads(data))
                if m := re.fullmatch(r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path):
                    return self.lfs_batch(json.loads(data))
                if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", path):
                    return self.commit(m[1], m[2], data)
                self.reply(404, {"error": f"no such endpoint {path}"})

            def create_repo(self, payload: dict) -> None:
                repo_id = f"{payload['organization']}/{payload['name']}"
                if repo_id in hub.state.repos:
                    return self.reply(409, {"error": "You already created this model repo", "url": repo_id})
                hub.state.repos[repo_id] = payload
                hub.state.branches[repo_id] = {"main"}
                self.reply(200, {"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})

            def validate_yaml(self, payload: dict) -> None:
                hub.state.validated_readmes.append(payload["content"])
                match = re.match(r"^---\n(.*?)\n---\n", payload["content"], re.S)
                try:
                    metadata = yaml.safe_load(match[1]) if match else None
                    ok = isinstance(metadata, dict)
                except yaml.YAMLError:
                    ok = False
                if not ok:
                    return self.reply(400, {"errors": [{"message": "metadata is not a YAML mapping"}]})
                self.reply(200, {"errors": [], "warnings": []})

            def preupload(self, repo_id: str, payload: dict) -> None:
                if repo_id not in hub.state.repos:
                    return self.reply(404, {"error": "Repository not found"})
                files = [
                    {
                        "path": f["path"],
                        "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                        "shouldIgnore": False,
                        "oid": None,
                    }
                    for f in payload["files"]
                ]
                self.reply(200, {"files": files, "commitOid": "0" * 40})

            def lfs_batch(self, payload: dict) -> None:
                objects = [
                    {
                        "oid": o["oid"],
                        "size": o["size"],
                        "authenticated": True,
                        "actions": {"upload": {"href": f"{hub.endpoint}/lfs-objects/{o['oid']}"}},
                    }
                    for o in payload["objects"]
                ]
                self.reply(200, {"transfer": "basic", "objects": objects})

            def commit(self, repo_id: str, revision: str, data: bytes) -> None:
                if repo_id not in hub.state.repos:
                    return self.reply(404, {"error": "Repository not found"})
                if revision not in hub.state.branches.get(repo_id, set()):
                    return self.reply(404, {"error": f"Invalid rev id: {revision}"})
                lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
                summary, files, lfs_paths = "", {}, set()
                for line in lines:
                    key, value = line["key"], line["value"]
                    if key == "header":
                        summary = value["summary"]
                    elif key == "file":
                        files[value["path"]] = base64.b64decode(value["content"])
                    elif key == "lfsFile":
                        if value["oid"] not in hub.state.lfs_objects:
                            return self.reply(422, {"error": f"LFS object {value['oid']} was never uploaded"})
                        files[value["path"]] = hub.state.lfs_objects[value["oid"]]
                        lfs_paths.add(value["path"])
                oid = hashlib.sha1(data).hexdigest()
                hub.state.commits.append(Commit(repo_id, revision, summary, oid, files, lfs_paths))
                url = f"{hub.endpoint}/{repo_id}/commit/{oid}"
                self.reply(200, {"success": True, "commitOid": oid, "commitUrl": url})

        return Handler
