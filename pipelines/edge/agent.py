"""The device agent: TUF-verified download with HTTP Range resume, atomic A/B swap, self-test, commit or roll back.

No Dagster, no MLflow. Everything an install needs to survive a power cut lives in the device's storage:

- trusted TUF metadata (python-tuf's `Updater` cache: rollback and freeze protection persist across boots);
- two slots, `a` and `b`, and a pointer `current` naming the slot the device boots (replaced with os.replace);
- a journal naming the install in progress and its step:
  downloading -> verified -> staged -> switched -> self_testing -> committed | rolled_back.

On boot `recover()` reads the journal and finishes or undoes the install: a download resumes where the
`.part` file ends; a staged slot is switched to; a switched slot is self-tested again (twice at most, so a
self-test that kills the device cannot loop) and committed or switched back. At every instant the pointer
names a complete, verified bundle: the old one until the switch, the new one after.

python-tuf's `download_target` neither resumes nor swaps atomically, so the agent uses the `Updater` for
metadata only (refresh, get_targetinfo) and downloads the bundle itself, then checks length and sha256
against the signed target info before the bytes go anywhere near a slot.

Trust: ngclient (tuf 7) starts every refresh from the root the device left the factory with (`bootstrap=`,
kept as `bootstrap-root.json` in the metadata folder) and walks the root chain it has cached
(`root_history/`) and then the repository's, so a device follows root rotations (`edge rotate-keys`) one
signed version at a time; no private ngclient API is used.

Clock skew: ngclient judges expiry against the system clock; the agent then checks the trusted top-level
metadata it cached against its own `clock` (the device's: on hardware the same clock, in the simulator a
skewed or advanced one), through the public `Metadata` API. A clock running ahead by more than the
timestamp's remaining lifetime refuses valid metadata: the device rejects the job, keeps its current model,
and says "expired by the device clock" so the operator fixes the clock (NTP). A clock running behind
is no more lenient than the system clock. It never bricks: expiry is checked before anything is downloaded
or switched.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pipelines.edge.runtime import BundleError, Predictor

STEPS = ("downloading", "verified", "staged", "switched", "self_testing", "committed", "rolled_back")
SLOTS = ("a", "b")
MAX_SELF_TEST_ATTEMPTS = 2
DEVICE_HEADER = "X-Device-Id"
BOOTSTRAP_ROOT = "bootstrap-root.json"


class PowerLoss(BaseException):
    """A simulated power cut: raised by a hook, it unwinds through everything (nothing may catch it)."""


class TransientError(RuntimeError):
    """The install could not finish now (network, disk): the job stays IN_PROGRESS and is retried."""


@dataclass(frozen=True)
class Outcome:
    """What a job ended as, in IoT Jobs terms, with the details a device reports."""

    status: str  # SUCCEEDED | FAILED | REJECTED
    details: dict[str, str]


# -- storage ------------------------------------------------------------------------------------------------


class Storage(ABC):
    """What survives a power cut on a device. `metadata_dir` is a folder because ngclient caches there."""

    metadata_dir: str

    @abstractmethod
    def read_doc(self, name: str) -> dict | None: ...

    @abstractmethod
    def write_doc(self, name: str, doc: dict | None) -> None:
        """Replace (or with None remove) a small JSON document atomically and durably."""

    @abstractmethod
    def slot_bytes(self, slot: str) -> bytes | None: ...

    @abstractmethod
    def drop_slot(self, slot: str) -> None: ...

    @abstractmethod
    def part_size(self) -> int: ...

    @abstractmethod
    def append_part(self, chunk: bytes) -> None:
        """Append durably; OSError(ENOSPC) when the disk is full."""

    @abstractmethod
    def part_digest(self) -> tuple[int, str]:
        """(length, sha256) of the partial download."""

    @abstractmethod
    def drop_part(self) -> None: ...

    @abstractmethod
    def promote_part(self, slot: str) -> None:
        """Move the verified download into a slot in one atomic step."""

    def slot_digest(self, slot: str) -> str | None:
        data = self.slot_bytes(slot)
        return None if data is None else hashlib.sha256(data).hexdigest()

    def load(self, slot: str) -> Predictor:
        data = self.slot_bytes(slot)
        if data is None:
            raise BundleError(f"slot {slot} is empty")
        return Predictor.from_bytes(data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStorage(Storage):
    """A device's state on real files: `current.json`, `journal.json`, `slot-a.tar`, `slot-b.tar`,
    `download.part`, `tuf/`; every replace is write-aside, fsync, os.replace, fsync of the folder.

    `quota_bytes` caps the bytes of slots plus the part (a small flash partition; the full-disk fault)."""

    def __init__(self, root: str | Path, *, quota_bytes: int | None = None, fsync: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.metadata_dir = str(self.root / "tuf")
        Path(self.metadata_dir).mkdir(exist_ok=True)
        self.quota_bytes, self.fsync = quota_bytes, fsync

    def _doc(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def _slot(self, slot: str) -> Path:
        return self.root / f"slot-{slot}.tar"

    @property
    def _part(self) -> Path:
        return self.root / "download.part"

    def read_doc(self, name: str) -> dict | None:
        try:
            return json.loads(self._doc(name).read_text())
        except FileNotFoundError:
            return None

    def write_doc(self, name: str, doc: dict | None) -> None:
        target = self._doc(name)
        if doc is None:
            target.unlink(missing_ok=True)
        else:
            tmp = target.with_suffix(".tmp")
            with open(tmp, "w") as out:
                json.dump(doc, out, sort_keys=True)
                out.flush()
                if self.fsync:
                    os.fsync(out.fileno())
            os.replace(tmp, target)
        if self.fsync:
            _fsync_dir(self.root)

    def slot_bytes(self, slot: str) -> bytes | None:
        try:
            return self._slot(slot).read_bytes()
        except FileNotFoundError:
            return None

    def drop_slot(self, slot: str) -> None:
        self._slot(slot).unlink(missing_ok=True)

    def _used(self) -> int:
        return sum(p.stat().st_size for p in (self._slot("a"), self._slot("b"), self._part) if p.exists())

    def part_size(self) -> int:
        try:
            return self._part.stat().st_size
        except FileNotFoundError:
            return 0

    def append_part(self, chunk: bytes) -> None:
        if self.quota_bytes is not None and self._used() + len(chunk) > self.quota_bytes:
            raise OSError(errno.ENOSPC, "No space left on device (quota)")
        with open(self._part, "ab") as out:
            out.write(chunk)
            out.flush()
            if self.fsync:
                os.fsync(out.fileno())

    def part_digest(self) -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        try:
            with open(self._part, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)
        except FileNotFoundError:
            pass
        return size, digest.hexdigest()

    def drop_part(self) -> None:
        self._part.unlink(missing_ok=True)

    def promote_part(self, slot: str) -> None:
        os.replace(self._part, self._slot(slot))
        if self.fsync:
            _fsync_dir(self.root)


class BlobStore:
    """Bundles by sha256, shared by every in-memory device of a simulation (10,000 copies of one bundle
    would be gigabytes; the bytes are identical, each device's state still holds its own digests)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.predictors: dict[str, Predictor] = {}
        self.lock = threading.Lock()

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        with self.lock:
            self.blobs.setdefault(sha, data)
        return sha

    def predictor(self, sha: str) -> Predictor:
        """A loaded bundle per digest: the self-test result depends on the bytes only."""
        with self.lock:
            cached = self.predictors.get(sha)
        if cached is None:
            cached = Predictor.from_bytes(self.blobs[sha])
            with self.lock:
                self.predictors[sha] = cached
        return cached


class MemoryStorage(Storage):
    """The same interface in memory, for simulated fleets; TUF metadata still lives in a (temporary) folder.

    A power cut keeps whatever was written, as a disk would: the object outlives the agent that used it."""

    def __init__(self, blobs: BlobStore, metadata_dir: str | Path, *, quota_bytes: int | None = None) -> None:
        self.blobs = blobs
        self.metadata_dir = str(metadata_dir)
        Path(self.metadata_dir).mkdir(parents=True, exist_ok=True)
        self.docs: dict[str, str] = {}
        self.slots: dict[str, str] = {}
        self.part = bytearray()
        self.quota_bytes = quota_bytes

    def read_doc(self, name: str) -> dict | None:
        raw = self.docs.get(name)
        return None if raw is None else json.loads(raw)

    def write_doc(self, name: str, doc: dict | None) -> None:
        if doc is None:
            self.docs.pop(name, None)
        else:
            self.docs[name] = json.dumps(doc)

    def slot_bytes(self, slot: str) -> bytes | None:
        sha = self.slots.get(slot)
        return None if sha is None else self.blobs.blobs[sha]

    def slot_digest(self, slot: str) -> str | None:
        return self.slots.get(slot)

    def load(self, slot: str) -> Predictor:
        sha = self.slots.get(slot)
        if sha is None:
            raise BundleError(f"slot {slot} is empty")
        return self.blobs.predictor(sha)

    def drop_slot(self, slot: str) -> None:
        self.slots.pop(slot, None)

    def part_size(self) -> int:
        return len(self.part)

    def append_part(self, chunk: bytes) -> None:
        if self.quota_bytes is not None:
            used = sum(len(self.blobs.blobs[s]) for s in self.slots.values()) + len(self.part)
            if used + len(chunk) > self.quota_bytes:
                raise OSError(errno.ENOSPC, "No space left on device (quota)")
        self.part.extend(chunk)

    def part_digest(self) -> tuple[int, str]:
        return len(self.part), hashlib.sha256(self.part).hexdigest()

    def drop_part(self) -> None:
        self.part = bytearray()

    def promote_part(self, slot: str) -> None:
        self.slots[slot] = self.blobs.put(bytes(self.part))
        self.part = bytearray()

    def install_factory(self, slot: str, data: bytes, version: str, target: str) -> None:
        """The image a device leaves the factory with."""
        self.slots[slot] = self.blobs.put(data)
        self.write_doc("current", {"slot": slot, "target": target, "sha256": self.slots[slot],
                                   "version": version})


# -- network ------------------------------------------------------------------------------------------------


def _fetcher_class():
    from tuf.api import exceptions  # noqa: PLC0415 - start-up: tuf ~0.2 s
    from tuf.ngclient.fetcher import FetcherInterface  # noqa: PLC0415 - start-up: tuf ~0.2 s

    class HttpxFetcher(FetcherInterface):
        """ngclient's metadata downloads over the agent's httpx client (one connection pool, the device header)."""

        def __init__(self, client, device_id: str, counter: Callable[[int], None]) -> None:
            self.client, self.device_id, self.counter = client, device_id, counter

        def _fetch(self, url: str):
            response = self.client.get(url, headers={DEVICE_HEADER: self.device_id})
            if response.status_code != 200:
                raise exceptions.DownloadHTTPError(f"HTTP {response.status_code} for {url}", response.status_code)
            self.counter(len(response.content))
            return iter([response.content])

    return HttpxFetcher


@dataclass
class Counters:
    bundle_bytes: int = 0
    metadata_bytes: int = 0
    requests: int = 0
    resumes: int = 0
    restarts: int = 0
    """Downloads begun again from byte 0 (a corrupted or tampered body)."""


# -- the agent ----------------------------------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class DeviceAgent:
    """One device. `report(job_id, status, details)` tells the jobs service; `hook(step)` runs after each
    persisted step (the simulator raises PowerLoss there; `edge agent --hold-at` parks the process there)."""

    device_id: str
    storage: Storage
    repo_url: str
    http: Any = None
    clock: Callable[[], dt.datetime] = _utcnow
    report: Callable[[str, str, dict], None] = lambda job_id, status, details: None
    hook: Callable[[str], None] = lambda step: None
    attempts: int = 4
    backoff: float = 0.05
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self.repo_url = self.repo_url.rstrip("/")
        self._own_http = self.http is None
        if self.http is None:
            self.http = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    # -- state ----------------------------------------------------------------------------------------

    @property
    def current(self) -> dict | None:
        return self.storage.read_doc("current")

    @property
    def journal(self) -> dict | None:
        return self.storage.read_doc("journal")

    @property
    def version(self) -> str | None:
        pointer = self.current
        return pointer["version"] if pointer else None

    def provision(self, root: bytes) -> None:
        """Install the trusted root a device ships with (once: later roots arrive through TUF's root chain)."""
        path = Path(self.storage.metadata_dir, BOOTSTRAP_ROOT)
        if not path.exists():
            path.write_bytes(root)

    def _bootstrap(self) -> bytes:
        """The root ngclient starts from: the provisioned one; on a device provisioned before tuf 7 (a plain
        `root.json`), that file, kept from then on as the bootstrap."""
        path = Path(self.storage.metadata_dir, BOOTSTRAP_ROOT)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            root = Path(self.storage.metadata_dir, "root.json").read_bytes()
            path.write_bytes(root)
            return root

    def predictor(self) -> Predictor | None:
        """The model the device runs now (None before its first install)."""
        pointer = self.current
        return self.storage.load(pointer["slot"]) if pointer else None

    def _journal(self, step: str, **changes: Any) -> dict:
        doc = {**(self.journal or {}), **changes, "step": step}
        self.storage.write_doc("journal", doc)
        self.hook(step)
        return doc

    # -- boot -------------------------------------------------------------------------------------------

    def recover(self) -> Outcome | None:
        """Finish or undo an install a power cut interrupted; report its outcome (again) if it had one.

        Returns None when nothing was pending, else the outcome reported."""
        journal = self.journal
        if not journal:
            return None
        try:
            return self._run(journal)
        except _Tampered as exc:
            self.storage.drop_part()
            self.storage.write_doc("journal", None)
            self.report(journal["job_id"], "REJECTED", {"reason": str(exc)})
            return Outcome("REJECTED", {"reason": str(exc)})

    # -- jobs -------------------------------------------------------------------------------------------

    def handle(self, job_id: str, document: dict) -> Outcome:
        """Carry out a job document.

        `{"operation": "install", "target": T}` installs the TUF target T. `{"operation": "rollback", "from": B,
        "target": F}` is relative to the device: one that does not run B has nothing to do; one that runs B goes
        back to the bundle it ran before (still in its other slot, verified again through TUF), or to F when that
        slot is gone. An unfinished download of B is dropped by any newer job.

        Raises TransientError when it should be tried again later (the job stays IN_PROGRESS)."""
        earlier = self._settle_earlier(job_id)
        if earlier is not None:
            return earlier
        target = str(document.get("target", ""))
        operation = document.get("operation", "install")
        if operation not in ("install", "rollback") or not target:
            return self._finish_now(job_id, "REJECTED", {"reason": f"unsupported job document {document}"})
        if operation == "rollback" and document.get("from"):
            target, done = self._rollback_target(job_id, str(document["from"]), target)
            if done is not None:
                return done
        self.report(job_id, "IN_PROGRESS", {"step": "refreshing_metadata"})
        from tuf.api.exceptions import RepositoryError  # noqa: PLC0415 - start-up: tuf ~0.2 s

        try:
            info = self._targetinfo(target)
        except RepositoryError as exc:  # every TUF refusal: tampered, replayed, expired, wrong signature
            return self._finish_now(job_id, "REJECTED", {"reason": _tuf_reason(exc, self.clock())})
        if info is None:
            return self._finish_now(job_id, "REJECTED", {"reason": f"target {target} is not in signed targets"})
        sha, length = info.hashes["sha256"], info.length
        pointer = self.current
        if pointer and pointer["sha256"] == sha:
            return self._finish_now(job_id, "SUCCEEDED", {"version": pointer["version"], "reason": "already installed"})
        slot = _other(pointer["slot"]) if pointer else "a"
        custom = info.custom or {}
        journal = {"job_id": job_id, "operation": operation, "target": target, "sha256": sha, "length": length,
                   "version": str(custom.get("model_version", "")), "slot": slot, "previous": pointer,
                   "self_test_attempts": 0}
        if self.storage.slot_digest(slot) == sha:  # a rollback to the bundle still in the other slot
            self.storage.drop_part()
            journal = self._journal("staged", **journal)
        else:
            if self.storage.part_size() and (self.journal or {}).get("sha256") != sha:
                self.storage.drop_part()
            journal = self._journal("downloading", **journal)
        return self._run(journal)

    def _settle_earlier(self, job_id: str) -> Outcome | None:
        """The outcome when this job already ended or is under way; otherwise the install of an earlier job is
        decided (a switched slot) or dropped (an unfinished download), and None."""
        last = self.storage.read_doc("last_job")
        if last and last.get("job_id") == job_id and not self.journal:  # a job notified again after its end
            details = {k: v for k, v in last.items() if k not in ("job_id", "status")}
            return self._finish_now(job_id, last["status"], details)
        journal = self.journal
        if journal and journal.get("job_id") != job_id:
            if journal["step"] in ("switched", "self_testing", "committed", "rolled_back"):
                self._run(journal)  # a switched slot is decided before anything else happens
            else:
                self.storage.drop_part()  # a newer job replaces an unfinished download
                self.storage.write_doc("journal", None)
        elif journal:
            return self._run(journal)
        return None

    def _rollback_target(self, job_id: str, bad: str, target: str) -> tuple[str, Outcome | None]:
        """What a rollback from `bad` installs: the bundle run before it when its slot still holds it, else
        `target`; with an outcome at once when the device does not run `bad`."""
        pointer = self.current
        if not pointer or pointer["target"] != bad:
            return target, self._finish_now(job_id, "SUCCEEDED", {
                "version": (pointer or {}).get("version", ""), "reason": f"not on {bad}"})
        before = pointer.get("previous")
        if before and self.storage.slot_digest(before["slot"]) == before["sha256"]:
            return before["target"], None
        return target, None

    def _finish_now(self, job_id: str, status: str, details: dict) -> Outcome:
        self.report(job_id, status, details)
        return Outcome(status, details)

    def _targetinfo(self, target: str):
        from tuf.api import exceptions  # noqa: PLC0415 - start-up: tuf ~0.2 s
        from tuf.ngclient import Updater  # noqa: PLC0415 - start-up: tuf ~0.2 s

        fetcher = _fetcher_class()(self.http, self.device_id, self._count_metadata)
        for attempt in range(self.attempts):
            try:
                updater = Updater(self.storage.metadata_dir, f"{self.repo_url}/metadata/",
                                  target_base_url=f"{self.repo_url}/targets/", fetcher=fetcher,
                                  bootstrap=self._bootstrap())
                updater.refresh()
                _check_expiry(self.storage.metadata_dir, self.clock())
                return updater.get_targetinfo(target)
            except exceptions.DownloadError as exc:
                if attempt == self.attempts - 1:
                    raise TransientError(f"metadata download failed: {exc}") from None
                time.sleep(self.backoff * 2**attempt)
        return None

    def _count_metadata(self, n: int) -> None:
        self.counters.metadata_bytes += n
        self.counters.requests += 1

    # -- the install state machine ------------------------------------------------------------------------

    def _run(self, journal: dict) -> Outcome:
        job_id = journal["job_id"]
        step = journal["step"]
        if step == "downloading":
            self._download(journal)
            journal = self._journal("verified")
            step = "verified"
        if step == "verified":
            journal = self._stage(journal)
            if journal["step"] == "downloading":  # a cut before the fsync of the part
                return self._run(journal)
            step = "staged"
        if step == "staged":
            if self.storage.slot_digest(journal["slot"]) != journal["sha256"]:
                self.storage.drop_slot(journal["slot"])
                return self._run(self._journal("downloading"))
            journal = self._switch(job_id, journal)
            step = "switched"
        if step in ("switched", "self_testing"):
            journal = self._self_test(journal)
            step = journal["step"]
        return self._conclude(job_id, journal, step)

    def _stage(self, journal: dict) -> dict:
        """Move the verified part into its slot; back to downloading when the part is not what was verified."""
        size, sha = self.storage.part_digest()
        if (size, sha) != (journal["length"], journal["sha256"]):
            return self._journal("downloading")
        self.storage.promote_part(journal["slot"])
        return self._journal("staged")

    def _switch(self, job_id: str, journal: dict) -> dict:
        """Point `current` at the staged slot (unless it points there already) and say so."""
        pointer = self.current
        if not pointer or pointer["sha256"] != journal["sha256"]:
            before = journal.get("previous")
            self.storage.write_doc("current", {
                "slot": journal["slot"], "target": journal["target"], "sha256": journal["sha256"],
                "version": journal["version"],
                "previous": {k: v for k, v in before.items() if k != "previous"} if before else None})
        self.report(job_id, "IN_PROGRESS", {"step": "switched", "version": journal["version"]})
        return self._journal("switched")

    def _self_test(self, journal: dict) -> dict:
        """Self-test the switched slot (at most MAX_SELF_TEST_ATTEMPTS boots): committed, or rolled back."""
        attempts = int(journal.get("self_test_attempts", 0)) + 1
        journal = self._journal("self_testing", self_test_attempts=attempts)
        if attempts > MAX_SELF_TEST_ATTEMPTS:
            passed, reason = False, f"self-test did not finish in {MAX_SELF_TEST_ATTEMPTS} boots"
        else:
            try:
                result = self.storage.load(journal["slot"]).self_test()
                passed, reason = result.passed, result.reason
            except BundleError as exc:
                passed, reason = False, str(exc)
        if passed:
            return self._journal("committed", reason=reason)
        self.storage.write_doc("current", journal.get("previous"))  # boot the previous bundle again
        return self._journal("rolled_back", reason=reason)

    def _conclude(self, job_id: str, journal: dict, step: str) -> Outcome:
        if step == "committed":
            outcome = Outcome("SUCCEEDED", {"version": journal["version"], "reason": journal.get("reason", "")})
        else:
            previous = journal.get("previous") or {}
            outcome = Outcome("FAILED", {"version": str(previous.get("version", "")),
                                         "reason": f"self-test failed, rolled back: {journal.get('reason', '')}"})
        # The end is durable before it is announced: a device that dies after this says it again when the job
        # is notified again (`last_job`), and one that reported SUCCEEDED never has an install left to finish.
        self.storage.write_doc("last_job", {"job_id": job_id, "status": outcome.status, **outcome.details})
        self.storage.write_doc("journal", None)
        self.report(job_id, outcome.status, outcome.details)
        return outcome

    def _download(self, journal: dict) -> None:
        """Fetch the bundle into the part file, resuming from its end; verify length and sha256."""
        url = f"{self.repo_url}/targets/{journal['sha256']}.{journal['target']}"
        restarted = False
        tries = {"failures": 0, "freed": False}
        while True:
            if not self._fetch_rest(url, journal, tries):
                continue
            size, sha = self.storage.part_digest()
            if size == journal["length"] and sha == journal["sha256"]:
                return
            self.storage.drop_part()
            self.counters.restarts += 1
            if restarted:
                raise _Tampered(f"{journal['target']} does not match its signed sha256 after two full downloads")
            restarted = True

    def _fetch_rest(self, url: str, journal: dict, tries: dict) -> bool:
        """Append what the part file lacks of the bundle; False when to try again: after freeing the spare slot
        on a full disk, or after a backoff on an HTTP failure (TransientError once both are used up)."""
        length = journal["length"]
        offset = self.storage.part_size()
        if offset > length:
            self.storage.drop_part()
            offset = 0
        if offset >= length:
            return True
        if offset:
            self.counters.resumes += 1
        try:
            self._fetch_range(url, offset, length)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            if tries["freed"]:
                raise TransientError("disk full even after freeing the spare slot") from None
            # The spare slot holds the release before the current one: the only bytes we may free.
            self.storage.drop_slot(journal["slot"])
            tries["freed"] = True
            return False
        except (httpx.HTTPError, _ShortBody) as exc:
            tries["failures"] += 1
            if tries["failures"] >= self.attempts:
                raise TransientError(f"download of {journal['target']} failed: {exc}") from None
            time.sleep(self.backoff * 2 ** min(tries["failures"], 5))
            return False
        return True

    def _fetch_range(self, url: str, offset: int, length: int) -> None:
        headers = {DEVICE_HEADER: self.device_id}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        self.counters.requests += 1
        with self.http.stream("GET", url, headers=headers) as response:
            if response.status_code == 200 and offset:
                self.storage.drop_part()  # the server ignored the range: start over
                offset = 0
            elif response.status_code not in (200, 206):
                raise _ShortBody(f"HTTP {response.status_code} for {url}")
            written = offset
            for chunk in response.iter_bytes():  # as received: a cut keeps every byte that arrived
                if written + len(chunk) > length:
                    chunk = chunk[: length - written]
                self.storage.append_part(chunk)
                self.counters.bundle_bytes += len(chunk)
                written += len(chunk)
                self.hook("download_chunk" if written < length * 0.5 else "download_half")
                if written >= length:
                    break
        if written < length:
            raise _ShortBody(f"body ended at {written} of {length} bytes")


class _ShortBody(Exception):
    pass


class _Tampered(Exception):
    pass


def _check_expiry(metadata_dir: str, now: dt.datetime) -> None:
    """ExpiredMetadataError when a trusted top-level role, as ngclient cached it, has expired by `now` (the
    device clock; ngclient itself judged by the system clock)."""
    from tuf.api.exceptions import ExpiredMetadataError  # noqa: PLC0415 - start-up: tuf ~0.2 s
    from tuf.api.metadata import Metadata  # noqa: PLC0415 - start-up: tuf ~0.2 s

    for role in ("root", "timestamp", "snapshot", "targets"):
        signed = Metadata.from_bytes(Path(metadata_dir, f"{role}.json").read_bytes()).signed
        if signed.is_expired(now):
            raise ExpiredMetadataError(f"{role}.json expired at {signed.expires:%Y-%m-%dT%H:%MZ} by the device clock")


def _other(slot: str) -> str:
    return "b" if slot == "a" else "a"


def _tuf_reason(exc: BaseException, now: dt.datetime) -> str:
    from tuf.api import exceptions  # noqa: PLC0415 - start-up: tuf ~0.2 s

    name = type(exc).__name__
    if isinstance(exc, exceptions.ExpiredMetadataError):
        return f"{name}: {exc} (judged by the device clock {now:%Y-%m-%dT%H:%MZ}; check its time if it is skewed)"
    return f"{name}: {exc}"


def handle_safely(agent: DeviceAgent, job_id: str, document: dict) -> Outcome | None:
    """`handle` with a tampered bundle reported as REJECTED; None when the job must be retried later."""
    try:
        return agent.handle(job_id, document)
    except TransientError:
        return None
    except _Tampered as exc:
        agent.storage.drop_part()
        agent.storage.write_doc("journal", None)
        agent.report(job_id, "REJECTED", {"reason": str(exc)})
        return Outcome("REJECTED", {"reason": str(exc)})


__all__ = ["BlobStore", "DeviceAgent", "FileStorage", "MemoryStorage", "Outcome", "PowerLoss", "STEPS",
           "TransientError", "handle_safely"]
