"""A stand-in for Kaggle's API on 127.0.0.1, speaking the wire protocol of the official client.

The unmodified client reaches it in proxy mode: KAGGLE_API_ENVIRONMENT=LOCALHOST makes it call
http://localhost/api/v1/<service>/<Method>, and HTTP_PROXY sends those requests here (see
shared/reference/kaggle-client-protocol.md). Every request is recorded, so tests assert on the wire. Tests drive
the state (kernel status walks, outputs, submissions, scores, limits, quota) and inject faults per RPC.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

API_PREFIX = "/api/v1/"


@dataclass
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    rpc: str  # "Service/Method" for API calls, "" for uploads and downloads
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived, to check waits between retries

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    @property
    def method_name(self) -> str:
        return self.rpc.rpartition("/")[2]


@dataclass
class Fault:
    """A fault served instead of (or after) the normal answer to the next `times` matching requests.

    Kinds: `status` answers an error (with `apply`, after doing the request: a processed request answered with a
    5xx); `html` answers a web page; `html_json` answers `status` with a web page labelled as JSON; `hang` does the request and answers `seconds` later (after the client's
    timeout: the answer is lost); `late` waits `seconds`, then does the request (it lands after the client gave up;
    with `after_gave_up`, `seconds` count from the moment the client closed the connection: Kaggle processing a
    request N s after the client gave up, as issue 25 saw; the stand-in's `time_scale` scales them);
    `empty` answers 200 with `{}` (with `apply`, after doing the request); `drop` does the request and closes the
    connection unanswered; `cut` (GET) sends half a file. `served` is set when a request meets the fault, so a test
    can act at that moment (send Ctrl-C to a kit in the middle of a request).
    """

    match: str  # an RPC method name (SaveKernel), "PUT" for blob uploads, or "GET" for file downloads
    kind: str  # status | html | hang | late | empty | drop | cut
    status: int = 503
    retry_after: str | None = None
    seconds: float = 5.0
    times: int = 1
    message: str = "injected fault"
    apply: bool = False
    after_gave_up: bool = False
    served: threading.Event = field(default_factory=threading.Event)
    gave_up_at: float | None = None  # `late` + `after_gave_up`: when the client closed the connection (monotonic)
    processed_at: float | None = None  # `late`: when the request was done


@dataclass
class Kernel:
    """A pushed kernel: its status walk, outputs and log."""

    owner: str
    slug: str
    request: dict[str, Any]
    walk: list[str] = field(default_factory=lambda: ["QUEUED", "RUNNING", "COMPLETE"])
    failure_message: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    log: str = ""
    polls: int = 0
    versions: list[dict[str, Any]] = field(default_factory=list)  # every SaveKernel request, version N at N-1


@dataclass
class Submission:
    ref: int
    file_name: str
    description: str
    content: bytes
    date: str
    status: str = "PENDING"
    public_score: str = ""
    private_score: str = ""
    error: str = ""
    kernel: str = ""  # code submissions: owner/slug/version
    rerun_private: str = ""  # the private score a rerun computed, shown once revealed

    def to_json(self) -> dict[str, Any]:
        data = {"ref": self.ref, "totalBytes": len(self.content), "date": self.date, "description": self.description,
                "fileName": self.file_name, "status": self.status, "submittedBy": "testuser", "teamName": "testuser"}
        if self.public_score:
            data["publicScore"] = self.public_score
        if self.private_score:
            data["privateScore"] = self.private_score
        if self.error:
            data["errorDescription"] = self.error
        return data


class StandIn:
    """The stand-in's state, its recorded requests and its faults; `start()` serves it on a free port."""

    def __init__(self, username: str = "testuser"):
        self.username = username
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.kernels: dict[str, Kernel] = {}
        self.default_walk = ["QUEUED", "RUNNING", "COMPLETE"]
        self.default_files: dict[str, bytes] = {}
        self.default_log = ""
        self.push_error = ""  # a soft SaveKernel error, e.g. "Maximum batch GPU session count of 2 reached"
        self.invalid_dataset_sources: list[str] = []
        self.reject_auth = False  # answer 401 to every API call
        self.tokens: dict[str, str] = {}  # access token -> username, for IntrospectToken
        self.rules_accepted = True  # False: competition calls answer 403
        self.daily_limit = 5
        self.submissions: list[Submission] = []
        self.blobs: dict[str, bytes | None] = {}  # upload token -> bytes (None until PUT)
        self.blob_names: dict[str, str] = {}  # upload token -> the file name StartSubmissionUpload gave
        self.auto_score: str | None = None  # public score given to a new submission when next listed
        self.competition_files: dict[str, bytes] = {"sample_submission.csv": b"ID,is_correct\n1,True\n2,True\n"}
        self.datasets: dict[str, dict[str, Any]] = {}
        # The image a kernel runs on when its push names none (GetKernel reports it as metadata.dockerImage).
        self.docker_image = "gcr.io/kaggle-private-byod/python@sha256:" + "5" * 64
        self.models: dict[str, int] = {}  # "owner/model/framework/variation" -> its latest version, for GetModelInstance
        # The public board: (team name, score as Kaggle sends it, a string), best first.
        self.board: list[tuple[str, str]] = []
        self.zipped_files: set[str] = set()  # data files served as <name>.zip, as Kaggle serves large ones
        # ListCompetitions: slug -> isKernelsSubmissionsOnly (True: a code competition)
        self.competitions: dict[str, bool] = {"math-grader": False}
        # Code competitions: what a rerun of a submitted notebook sees (see HiddenTest and _rerun)
        self.hidden: HiddenTest | None = None
        # A competition of any shape (kit's practice data, see serve_practice): uploaded files scored by its task's metric
        self.scorer: PracticeScorer | None = None
        self.reruns: list[threading.Thread] = []
        self.gpu_seconds_used = 36000
        self.gpu_seconds_total = 108000
        self._next_ref = 41000001
        # The stand-in's clock: `late` faults wait `seconds * time_scale`, so a test can have Kaggle process a request
        # "120 s after the client gave up" in 2.4 s, with kit's windows scaled alike (KIT_KAGGLE_* settings).
        self.time_scale = 1.0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- serving ---------------------------------------------------------------------------------------------------

    def start(self) -> "StandIn":
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()  # wakes hung handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The environment that points the unmodified client here (proxy mode)."""
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": self.url, "http_proxy": self.url}

    # -- test helpers ----------------------------------------------------------------------------------------------

    def inject(self, match: str, kind: str = "status", **kwargs: Any) -> Fault:
        fault = Fault(match=match, kind=kind, **kwargs)
        self.faults.append(fault)
        return fault

    def calls(self, method: str) -> list[Recorded]:
        """Recorded API calls of one RPC method (e.g. "SaveKernel"), or uploads ("PUT") and downloads ("GET")."""
        if method in ("PUT", "GET"):
            return [r for r in self.requests if r.method == method and not r.rpc]
        return [r for r in self.requests if r.method_name == method]

    def score(self, ref: int | str, public: str, status: str = "COMPLETE", error: str = "") -> None:
        sub = self._submission(int(ref))
        sub.status, sub.public_score, sub.error = status, public, error

    def reveal_private(self, ref: int | str, private: str | None = None) -> None:
        """Show a submission's private score: `private`, or the one its rerun computed."""
        sub = self._submission(int(ref))
        sub.private_score = private if private is not None else sub.rerun_private

    def _submission(self, ref: int) -> Submission:
        return next(s for s in self.submissions if s.ref == ref)

    def wait_reruns(self, timeout: float = 120.0) -> None:
        """Wait for every code submission's rerun to end."""
        for thread in list(self.reruns):
            thread.join(timeout)

    def take_fault(self, match: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.match == match and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def wait(self, seconds: float) -> None:
        self._release.wait(seconds)

    # -- API -------------------------------------------------------------------------------------------------------

    def rpc(self, method: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body or bytes, extra headers) for one API call."""
        handler = getattr(self, f"_rpc_{method}", None)
        if handler is None:
            return 404, {"code": 404, "message": f"stand-in has no {method}"}, {}
        return handler(body)

    def _kernel(self, body: dict[str, Any]) -> Kernel | None:
        return self.kernels.get(f"{body.get('userName')}/{body.get('kernelSlug')}")

    # Kaggle hides whether a kernel exists from whoever may not read it: a kernel that does not exist is answered
    # as one the caller may not see (Kaggle/kaggle-cli#548).
    UNKNOWN_KERNEL = (403, {"code": 403, "message": "Permission 'kernels.get' was denied"}, {})

    def _rpc_IntrospectToken(self, body):
        user = self.tokens.get(body.get("token", ""))
        return (200, {"active": True, "username": user}, {}) if user else (403, {"code": 403, "message": "bad token"}, {})

    def _rpc_SaveKernel(self, body):
        empty = {"invalidTags": [], "invalidCompetitionSources": [], "invalidKernelSources": [], "invalidModelSources": []}
        if self.push_error:
            return 200, {"error": self.push_error, "invalidDatasetSources": [], **empty}, {}
        owner, _, slug = body["slug"].partition("/")
        kernel = self.kernels.get(body["slug"])
        if kernel is None:
            kernel = Kernel(owner, slug, body, list(self.default_walk), files=dict(self.default_files), log=self.default_log)
            self.kernels[body["slug"]] = kernel
        kernel.versions.append(body)
        return 200, {"ref": f"/code/{owner}/{slug}", "url": f"https://www.kaggle.com/code/{owner}/{slug}",
                     "versionNumber": len(kernel.versions), "kernelId": 1000 + len(self.kernels),
                     "invalidDatasetSources": list(self.invalid_dataset_sources), **empty}, {}

    def _rpc_GetKernelSessionStatus(self, body):
        kernel = self._kernel(body)
        if kernel is None:
            return self.UNKNOWN_KERNEL
        status = kernel.walk[min(kernel.polls, len(kernel.walk) - 1)]
        kernel.polls += 1
        data = {"status": status}
        if status == "ERROR" and kernel.failure_message:
            data["failureMessage"] = kernel.failure_message
        return 200, data, {}

    def _rpc_ListKernelSessionOutput(self, body):
        kernel = self._kernel(body)
        if kernel is None:
            return self.UNKNOWN_KERNEL
        names = sorted(kernel.files)
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 20)
        page = names[start:start + size]
        data: dict[str, Any] = {"files": [{"fileName": n, "url": f"{self.url}/files/{kernel.owner}/{kernel.slug}/{n}"} for n in page]}
        if start + size < len(names):
            data["nextPageToken"] = str(start + size)
        if start == 0 and kernel.log:
            data["log"] = kernel.log
        return 200, data, {}

    def _competition_gate(self, body):
        if not self.rules_accepted:
            return 403, {"code": 403, "message": "You must accept this competition's rules before you can continue"}, {}
        return None

    def _rpc_GetSubmissionLimits(self, body):
        gate = self._competition_gate(body)
        if gate:
            return gate
        today = len(self.submissions)
        return 200, {"numToday": today, "numTotal": today, "numAllowedNow": max(0, self.daily_limit - today)}, {}

    def _rpc_StartSubmissionUpload(self, body):
        gate = self._competition_gate(body)
        if gate:
            return gate
        token = f"sub-blob-{len(self.blobs) + 1}"
        self.blobs[token] = None
        self.blob_names[token] = body.get("fileName", "")
        return 200, {"token": token, "createUrl": f"{self.url}/upload/{token}"}, {}

    def _rpc_CreateSubmission(self, body):
        gate = self._competition_gate(body)
        if gate:
            return gate
        token = body.get("blobFileTokens", "")
        content = self.blobs.get(token)
        if content is None:
            return 400, {"code": 400, "message": "blob not uploaded"}, {}
        if len(self.submissions) >= self.daily_limit:
            return 400, {"code": 400, "message": "daily submission limit reached"}, {}
        ref = self._next_ref
        self._next_ref += 1
        date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        name = self.blob_names.get(token) or "submission.csv"
        self.submissions.append(Submission(ref, name, body.get("submissionDescription", ""), content, date))
        return 200, {"message": f"Successfully submitted to {body.get('competitionName')}", "ref": ref}, {}

    def _rpc_ListCompetitions(self, body):
        search = body.get("search", "")
        found = [{"id": 5000 + i, "ref": f"https://www.kaggle.com/competitions/{slug}", "title": slug.replace("-", " "),
                  "isKernelsSubmissionsOnly": code, "maxDailySubmissions": self.daily_limit, "tags": []}
                 for i, (slug, code) in enumerate(self.competitions.items()) if search in slug]
        return 200, {"competitions": found}, {}

    def _rpc_CreateCodeSubmission(self, body):
        gate = self._competition_gate(body)
        if gate:
            return gate
        kernel = self.kernels.get(f"{body.get('kernelOwner')}/{body.get('kernelSlug')}")
        if kernel is None:
            return 404, {"code": 404, "message": "Notebook not found"}, {}
        number = int(body.get("kernelVersion") or len(kernel.versions))
        if not 1 <= number <= len(kernel.versions):
            return 400, {"code": 400, "message": f"Notebook version {number} not found"}, {}
        version = kernel.versions[number - 1]
        if not self.competitions.get(body.get("competitionName", ""), False):
            return 400, {"code": 400, "message": "This competition does not accept notebook submissions"}, {}
        if version.get("enableInternet", True):  # the client's default is on when the metadata says nothing
            return 400, {"code": 400, "message": "Notebooks with internet access enabled cannot be submitted"}, {}
        if len(self.submissions) >= self.daily_limit:
            return 400, {"code": 400, "message": "daily submission limit reached"}, {}
        ref = self._next_ref
        self._next_ref += 1
        date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        sub = Submission(ref, body.get("fileName", ""), body.get("submissionDescription", ""), b"", date,
                         kernel=f"{kernel.owner}/{kernel.slug}/{number}")
        self.submissions.append(sub)
        if self.hidden is not None:
            thread = threading.Thread(target=self._rerun, args=(sub, version), daemon=True)
            self.reruns.append(thread)
            thread.start()
        return 200, {"message": f"Successfully submitted to {body.get('competitionName')}", "ref": ref}, {}

    def _rerun(self, sub: Submission, version: dict[str, Any]) -> None:
        """Kaggle's rerun of a code submission, emulated as faithfully as a stand-in can: the exact script of the
        submitted version (SaveKernel's `text`) runs again, in a fresh Kaggle tree where the competition's test.csv
        is the hidden one and the version's kernel sources are the outputs this stand-in holds for them, with
        KAGGLE_IS_COMPETITION_RERUN set, the internet off (a new network namespace where `unshare` allows one),
        and the competition's time limit. The file it writes under the submission's name is then scored against the
        hidden labels. Nothing of the run that was committed is reused: its outputs were computed on the visible
        test rows, so scoring them would not be what Kaggle scores."""
        hidden = self.hidden
        assert hidden is not None
        status, public, private, error = "ERROR", "", "", ""
        with tempfile.TemporaryDirectory(prefix="standin-rerun-") as tmp:
            root = Path(tmp) / "kaggle"
            comp = root / "input" / "competitions" / hidden.competition
            comp.mkdir(parents=True)
            # An inference-server competition's gateway holds the hidden rows: the notebook keeps the visible files.
            hidden_test = {} if hidden.gateway else {"test.csv": hidden.test_csv}
            for name, content in {**self.competition_files, **hidden.files, **hidden_test}.items():
                (comp / name).parent.mkdir(parents=True, exist_ok=True)
                (comp / name).write_bytes(content)
            for source in version.get("kernelDataSources", []):
                attached = self.kernels.get("/".join(source.split("/")[:2]))
                for name, content in (attached.files if attached else {}).items():
                    target = root / "input" / source.split("/")[1] / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
            working = root / "working"
            working.mkdir()
            script = Path(tmp) / "kernel.py"
            script.write_text(version.get("text", ""))
            env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
            env.update(KIT_KAGGLE_ROOT=str(root), KAGGLE_IS_COMPETITION_RERUN="1", KAGGLE_KERNEL_RUN_TYPE="Batch",
                       PYTHONUNBUFFERED="1")
            command = [*_offline_prefix(), sys.executable, str(script)]
            if hidden.gateway:
                status, public, private, error = self._served_rerun(hidden, command, working, env, Path(tmp))
                with self._lock:
                    sub.status, sub.public_score, sub.rerun_private, sub.error = status, public, private, error
                return
            try:
                done = subprocess.run(command, cwd=working, env=env, capture_output=True, text=True, timeout=hidden.time_limit)
                hidden.logs.append(done.stdout + done.stderr)
                output = working / sub.file_name
                if done.returncode != 0:
                    error = "Notebook Threw Exception"
                elif not output.is_file():
                    error = "Submission CSV Not Found"
                else:
                    public, private, error = hidden.score(output.read_text())
                    status = "COMPLETE" if not error else "ERROR"
            except subprocess.TimeoutExpired:
                error = "Notebook Timeout"
        with self._lock:
            sub.status, sub.public_score, sub.rerun_private, sub.error = status, public, private, error

    def _served_rerun(self, hidden: "HiddenTest", command: list[str], working: Path, env: dict, tmp: Path) -> tuple[str, str, str, str]:
        """An inference-server competition's rerun: the competition's gateway (kit's practice one, the stand-in's
        kaggle_evaluation) sends the hidden rows to the notebook's predict and writes submission.parquet, scored here."""
        from kit.practice.rerun import serve_hidden_rows

        test = tmp / "hidden-test.csv"
        test.write_bytes(hidden.test_csv)
        out = tmp / "gateway"
        out.mkdir()
        log = tmp / "log.txt"
        error = serve_hidden_rows(command, working, env, test, hidden.gateway["call_seconds"], hidden.gateway["startup_seconds"],
                                  hidden.time_limit, out, log)
        hidden.logs.append(log.read_text(errors="replace"))
        if error:
            return "ERROR", "", "", error
        public, private, error = hidden.score_answers(out / "submission.parquet")
        return ("COMPLETE" if not error else "ERROR"), public, private, error

    def _rpc_ListSubmissions(self, body):
        gate = self._competition_gate(body)
        if gate:
            return gate
        if self.auto_score is not None:
            for sub in self.submissions:
                if sub.status == "PENDING":
                    sub.status, sub.public_score = "COMPLETE", self.auto_score
        if self.scorer is not None:
            for sub in self.submissions:
                if sub.status == "PENDING" and not sub.kernel:
                    public, private, sub.error = self.scorer.score(sub.content, sub.file_name)
                    sub.status, sub.public_score, sub.rerun_private = ("ERROR" if sub.error else "COMPLETE"), public, private
        subs = sorted(self.submissions, key=lambda s: -s.ref)
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 20)
        data: dict[str, Any] = {"submissions": [s.to_json() for s in subs[start:start + size]]}
        if start + size < len(subs):
            data["nextPageToken"] = str(start + size)
        return 200, data, {}

    def _rpc_GetSubmission(self, body):
        for sub in self.submissions:
            if sub.ref == int(body.get("ref", 0)):
                return 200, sub.to_json(), {}
        return 404, {"code": 404, "message": "Submission not found"}, {}

    def _rpc_GetAcceleratorQuotaStatistics(self, body):
        return 200, {"quotaRefreshTime": "2030-01-06T00:00:00Z",
                     "gpuQuota": {"timeUsed": f"{self.gpu_seconds_used}s", "totalTimeAllowed": f"{self.gpu_seconds_total}s"},
                     "tpuQuota": {"timeUsed": "0s", "totalTimeAllowed": "72000s"}}, {}

    def _rpc_DownloadDataFile(self, body):
        gate = self._competition_gate(body)
        if gate:
            return gate
        name = body.get("fileName", "")
        if name not in self.competition_files:
            return 404, {"code": 404, "message": "file not found"}, {}
        suffix = ".zip" if name in self.zipped_files else ""
        return 302, b"", {"Location": f"{self.url}/data/{body.get('competitionName')}/{name}{suffix}"}

    def _rpc_ListDataFiles(self, body):
        gate = self._competition_gate(body)
        if gate:
            return gate
        names = sorted(self.competition_files)
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 20)
        files = [{"name": n, "totalBytes": len(self.competition_files[n]), "creationDate": "2026-09-01T00:00:00.000Z"}
                 for n in names[start:start + size]]
        data: dict[str, Any] = {"files": files}
        if start + size < len(names):
            data["nextPageToken"] = str(start + size)
        return 200, data, {}

    def _rpc_GetLeaderboard(self, body):
        gate = self._competition_gate(body)
        if gate:
            return gate
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 20)
        page = [{"teamId": 5000 + i, "teamName": team, "submissionDate": "2026-10-01T12:00:00.000Z", "score": score}
                for i, (team, score) in enumerate(self.board[start:start + size], start=start)]
        data: dict[str, Any] = {"submissions": page}
        if start + size < len(self.board):
            data["nextPageToken"] = str(start + size)
        return 200, data, {}

    def _rpc_GetKernel(self, body):
        kernel = self._kernel(body)
        if kernel is None:
            return self.UNKNOWN_KERNEL
        sent = kernel.versions[-1] if kernel.versions else kernel.request  # the latest version's SaveKernel
        return 200, {"metadata": {"id": 1, "ref": f"{kernel.owner}/{kernel.slug}", "title": sent.get("newTitle", kernel.slug),
                                  "slug": kernel.slug, "language": "python", "kernelType": "script",
                                  "currentVersionNumber": len(kernel.versions),
                                  "dockerImage": sent.get("dockerImage") or self.docker_image,
                                  "machineShape": sent.get("machineShape", ""), "categoryIds": [], "datasetDataSources": [],
                                  "kernelDataSources": [], "competitionDataSources": [], "modelDataSources": []},
                     "blob": {"source": sent.get("text", ""), "language": "python", "kernelType": "script", "slug": kernel.slug}}, {}

    def _rpc_GetModelInstance(self, body):
        # The client sends the framework as its enum name (MODEL_FRAMEWORK_PY_TORCH); handles spell it pyTorch.
        framework = str(body.get("framework", "")).removeprefix("MODEL_FRAMEWORK_").replace("_", "").lower()
        for handle, version in self.models.items():
            owner, model, fw, variation = handle.split("/")
            if (owner, model, variation) == (body.get("ownerSlug"), body.get("modelSlug"), body.get("instanceSlug")) and fw.lower() == framework:
                return 200, {"id": 7, "slug": variation, "framework": body["framework"], "versionNumber": version,
                             "url": f"https://www.kaggle.com/models/{owner}/{model}/{fw}/{variation}/{version}"}, {}
        return 404, {"code": 404, "message": "Model instance not found"}, {}

    def _rpc_GetDatasetStatus(self, body):
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            return 404, {"code": 404, "message": "Dataset not found"}, {}
        return 200, {"status": "READY"}, {}

    def _rpc_StartBlobUpload(self, body):
        token = f"ds-blob-{len(self.blobs) + 1}"
        self.blobs[token] = None
        return 200, {"token": token, "createUrl": f"{self.url}/upload/{token}"}, {}

    def _dataset_files(self, files):
        return {f["token"]: self.blobs.get(f["token"]) for f in files}

    def _rpc_CreateDataset(self, body):
        ref = f"{body['ownerSlug']}/{body['slug']}"
        self.datasets[ref] = {"versions": [self._dataset_files(body.get("files", []))], "title": body.get("title")}
        return 200, {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}", "status": "Ok", "invalidTags": []}, {}

    def _rpc_CreateDatasetVersion(self, body):
        ref = f"{body['ownerSlug']}/{body['datasetSlug']}"
        if ref not in self.datasets:
            return 404, {"code": 404, "message": "Dataset not found"}, {}
        self.datasets[ref]["versions"].append(self._dataset_files(body["body"].get("files", [])))
        return 200, {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}", "status": "Ok", "invalidTags": []}, {}


@dataclass
class PracticeScorer:
    """A competition of any shape served from kit's practice data (a `kit practice init --task SHAPE` folder): its
    files and sample submission, and uploads scored as the practice competition scores them, by the task's metric
    on the hidden public and private rows (the private score shown once revealed)."""

    directory: Path

    def files(self) -> dict[str, bytes]:
        """The competition's data files as Kaggle lists them (train, test, sample_submission)."""
        return {p.name: p.read_bytes() for p in sorted((self.directory / "data").iterdir()) if p.is_file()}

    def score(self, content: bytes, name: str) -> tuple[str, str, str]:
        """(public, private, error) of an uploaded file, as Kaggle's scorer reports them."""
        from kit.errors import KitError
        from kit.practice.competition import PracticeCompetition

        with tempfile.TemporaryDirectory(prefix="standin-score-") as tmp:
            path = Path(tmp) / (name or "submission.csv")
            path.write_bytes(content)
            try:
                public, private = PracticeCompetition(self.directory).score(path)
            except KitError as exc:
                return "", "", f"Submission Scoring Error: {exc.message}"
        return f"{public:.5f}", f"{private:.5f}", ""


@dataclass
class HiddenTest:
    """What a code competition's rerun sees and is scored against: the hidden test.csv that replaces the visible
    one, the other competition files, the hidden labels (ID -> (label, public row?)) and the rerun time limit."""

    competition: str
    test_csv: bytes
    solution: dict[str, tuple[str, bool]]
    files: dict[str, bytes] = field(default_factory=dict)
    time_limit: float = 120.0
    logs: list[str] = field(default_factory=list)  # each rerun's output, for a failing test to show
    # An inference-server competition (its files ship kaggle_evaluation): {call_seconds, startup_seconds}; the solution
    # then holds each id's integer answer, and the gateway's submission.parquet is what is scored.
    gateway: dict | None = None

    def score_answers(self, path: Path) -> tuple[str, str, str]:
        """(public, private, error) accuracies of the gateway's answers."""
        import polars as pl

        frame = pl.read_parquet(path)
        answers = dict(zip(frame["id"].cast(pl.Utf8).to_list(), frame["answer"].to_list()))
        if set(answers) != set(self.solution):
            return "", "", f"Submission Scoring Error: {len(answers)} answers, expected the {len(self.solution)} hidden test ids"
        right = {True: 0, False: 0}
        for row_id, (truth, public) in self.solution.items():
            right[public] += str(answers[row_id]) == str(truth)
        n_public = sum(public for _, public in self.solution.values())
        return f"{right[True] / n_public:.5f}", f"{right[False] / (len(self.solution) - n_public):.5f}", ""

    def score(self, text: str) -> tuple[str, str, str]:
        """(public, private, error) accuracies of a submission file, as Kaggle's scorer reports them."""
        rows = list(csv.DictReader(io.StringIO(text)))
        predicted = {r.get("ID", ""): (r.get("is_correct") or "").strip() for r in rows}
        if len(rows) != len(self.solution) or set(predicted) != set(self.solution):
            return "", "", f"Submission Scoring Error: {len(rows)} rows, expected the {len(self.solution)} hidden test IDs"
        right = {True: 0, False: 0}
        for row_id, (label, public) in self.solution.items():
            right[public] += predicted[row_id] == label
        n_public = sum(public for _, public in self.solution.values())
        return f"{right[True] / n_public:.5f}", f"{right[False] / (len(self.solution) - n_public):.5f}", ""


def _offline_prefix() -> list[str]:
    """`unshare` arguments that put a command in a network namespace of its own (no network), where allowed."""
    for prefix in (["unshare", "-rn"], ["unshare", "-n"]):
        if shutil.which("unshare") and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return []


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _record(self) -> tuple[str, Recorded]:
        path = urlsplit(self.path).path  # proxy mode sends absolute-form targets
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rpc = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else ""
        recorded = Recorded(self.command, path, rpc, {k: v for k, v in self.headers.items()}, body)
        with self.standin._lock:
            self.standin.requests.append(recorded)
        return path, recorded

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            if not isinstance(payload, bytes):
                self.send_header("Content-Type", "application/json")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _fault(self, fault: Fault, answer: tuple[int, Any, dict[str, str]] | None) -> bool:
        """Serve a fault that answers instead of the request (status, html, empty); True if it answered."""
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(fault.status, {"code": fault.status, "message": fault.message}, headers)
            return True
        if fault.kind in ("html", "html_json"):
            page = b"<!DOCTYPE html><html><body><h1>Kaggle is down for maintenance</h1></body></html>"
            if fault.kind == "html_json":  # a proxy's or load balancer's error page, labelled as JSON
                self._send(fault.status, page, {"Content-Type": "application/json"})
                return True
            self._send(fault.status if fault.status < 500 else 200, page, {"Content-Type": "text/html; charset=utf-8"})
            return True
        if fault.kind == "empty":
            self._send(200, {})
            return True
        if fault.kind == "hang":  # the request was done first: only its answer is late
            self.standin.wait(fault.seconds)
            if answer is not None:
                self._send(*answer)
            return True
        if fault.kind == "drop":
            self.close_connection = True
            return True
        return False

    def _apply(self, method: str, recorded: Recorded) -> tuple[int, Any, dict[str, str]]:
        with self.standin._lock:
            return self.standin.rpc(method, recorded.json)

    def do_POST(self) -> None:
        path, recorded = self._record()
        standin = self.standin
        if not recorded.rpc:
            self._send(404, {"code": 404, "message": f"no route {path}"})
            return
        method = recorded.method_name
        fault = standin.take_fault(method)
        if fault is not None:
            fault.served.set()
        late = fault if fault and fault.kind == "late" else None
        if late:  # the request lands after the client gave up; its answer goes nowhere
            if late.after_gave_up:
                self._wait_for_hang_up()
                late.gave_up_at = time.monotonic()
            standin.wait(late.seconds * standin.time_scale)
            fault = None
        # Faults that answer before the request is done (unless `apply`): nothing happened on the server.
        if fault and fault.kind in ("status", "html", "html_json", "empty") and not fault.apply and self._fault(fault, None):
            return
        auth = recorded.headers.get("Authorization", "")
        if method != "IntrospectToken" and (standin.reject_auth or not auth):
            self._send(401, {"code": 401, "message": "Unauthenticated"})
            return
        if auth.startswith("Basic "):
            recorded.headers["X-User"] = base64.b64decode(auth[6:]).decode().partition(":")[0]
        answer = self._apply(method, recorded)
        if late:
            late.processed_at = time.monotonic()
        if fault:
            self._fault(fault, answer)
            return
        self._send(*answer)

    def _wait_for_hang_up(self, limit: float = 600.0) -> None:
        """Block until the client closes this connection (it gave up waiting for the answer)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and not self.standin._release.is_set():
            ready, _, _ = select.select([self.connection], [], [], 0.05)
            if ready:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return
                except OSError:
                    return

    def do_PUT(self) -> None:
        path, recorded = self._record()
        token = path.rpartition("/")[2]
        fault = self.standin.take_fault("PUT")
        if fault is not None:
            fault.served.set()
        if fault and self._fault(fault, None):
            return
        if not path.startswith("/upload/") or token not in self.standin.blobs:
            self._send(404, {"code": 404, "message": "unknown upload"})
            return
        if recorded.headers.get("Content-Range", "").startswith("bytes */"):  # a resume probe
            done = self.standin.blobs[token] is not None
            self._send(200 if done else 308, b"")
            return
        self.standin.blobs[token] = recorded.body
        self._send(200, b"")

    def do_GET(self) -> None:
        path, recorded = self._record()
        parts = path.strip("/").split("/")
        content: bytes | None = None
        if parts[0] == "files" and len(parts) >= 4:
            kernel = self.standin.kernels.get(f"{parts[1]}/{parts[2]}")
            content = kernel.files.get("/".join(parts[3:])) if kernel else None
        elif parts[0] == "data" and len(parts) == 3:
            content = self.standin.competition_files.get(parts[2])
            zipped = parts[2].removesuffix(".zip")
            if content is None and zipped in self.standin.zipped_files and zipped in self.standin.competition_files:
                content = _zip_of(zipped, self.standin.competition_files[zipped])
        if content is None:
            self._send(404, {"code": 404, "message": "no such file"})
            return
        fault = self.standin.take_fault("GET")
        if fault and fault.kind == "cut":  # promise the whole file, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.wfile.write(content[: len(content) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if fault and self._fault(fault, (200, content, {})):
            return
        start = 0
        ranged = recorded.headers.get("Range", "")
        if ranged.startswith("bytes="):
            start = int(ranged[6:].split("-")[0] or 0)
        if start:
            self._send(206, content[start:], {"Content-Range": f"bytes {start}-{len(content) - 1}/{len(content)}", "Accept-Ranges": "bytes"})
        else:
            self._send(200, content, {"Accept-Ranges": "bytes"})


def _zip_of(name: str, content: bytes) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def serve(standin: StandIn | None = None) -> StandIn:
    """Start a stand-in (a fresh one unless given) and return it."""
    return (standin or StandIn()).start()


if __name__ == "__main__":  # a manual stand-in: point the kaggle CLI at it with the printed variables
    server = serve()
    server.default_files = {"submission.csv": b"ID,is_correct\n1,True\n"}
    for key, value in server.env().items():
        print(f"export {key}={value}")
    while True:
        time.sleep(3600)
