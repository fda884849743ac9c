"""`Registry` semantics on SQLite with an injected check: add/reject/force, lifecycle, traffic, verify, events."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from registry_helpers import failing, make_adapter, make_report, passing

from loraguard.errors import (
    AdapterNotFoundError,
    AdapterRejectedError,
    HubUnavailableError,
    InputError,
    RegistryError,
    RegistryNotFoundError,
)
from loraguard.registry import Entry, Registry, Status, hash_files, normalize_base
from loraguard.registry.admission import admit


def _snapshot(reg: Registry) -> tuple:
    return reg.revision(), reg.list(), reg.events(limit=1000)


def test_add_records_everything_and_starts_as_shadow(reg: Registry, adapter: Path, base: Path) -> None:
    entry = admit(
        reg, "tox", adapter, base=str(base), tags=["team-a", "team-a", "nightly"], actor="alice", check_fn=passing
    )
    assert isinstance(entry, Entry)
    assert (entry.ref, entry.version, entry.status, entry.traffic_weight) == ("tox@1", 1, Status.CANDIDATE, 0.0)
    assert entry.shadow and not entry.forced and entry.force_reason is None
    assert entry.source == str(adapter) and entry.path == str(adapter.resolve())
    assert entry.base == str(base.resolve()) and entry.task == "SEQ_CLS"  # task from the check's task_type
    assert entry.tags == ("team-a", "nightly") and entry.created_by == "alice"
    assert dict(entry.files) == hash_files(adapter)
    assert list(entry.files) == ["adapter_config.json", "adapter_model.safetensors", "tokenizer/vocab.txt"]
    assert entry.check_report == json.loads(make_report().to_json()) and entry.probe_report is None
    assert entry.created_at.endswith("+00:00") and entry.created_at == entry.updated_at
    assert reg.get("tox") == entry == reg.get("tox@1")
    data = entry.to_dict()
    assert data["ref"] == "tox@1" and data["shadow"] is True and json.loads(json.dumps(data)) == data
    (event,) = reg.events("tox")
    assert (event.kind, event.ref, event.actor) == ("added", "tox@1", "alice")


def test_versions_increment_per_name_and_get_resolves_refs(reg: Registry, adapter: Path, base: Path) -> None:
    refs = [admit(reg, name, adapter, base=str(base), check_fn=passing).ref for name in ("a", "b", "a", "a", "b")]
    assert refs == ["a@1", "b@1", "a@2", "a@3", "b@2"]
    assert reg.get("a").version == 3 and reg.get("a@2").version == 2
    assert [e.ref for e in reg.list(name="a")] == ["a@1", "a@2", "a@3"]
    for missing in ("zzz", "a@9"):
        with pytest.raises(RegistryNotFoundError, match=missing):
            reg.get(missing)
    for bad in ("a@", "a@x", "", "a b"):
        with pytest.raises(InputError):
            reg.get(bad)
    with pytest.raises(InputError, match="adapter name"):
        admit(reg, "bad@name", adapter, base=str(base), check_fn=passing)


def test_rejected_adapter_writes_nothing(reg: Registry, adapter: Path, base: Path) -> None:
    admit(reg, "tox", adapter, base=str(base), check_fn=passing)
    before = _snapshot(reg)
    with pytest.raises(AdapterRejectedError, match=r"LG401 zero-adapter.*--force --reason") as info:
        admit(reg, "tox", adapter, base=str(base), check_fn=failing)
    assert info.value.report.errors[0].code == "LG401"  # the report travels with the error
    with pytest.raises(InputError, match="--reason"):
        admit(reg, "tox", adapter, base=str(base), check_fn=failing, force=True)
    with pytest.raises(InputError, match="--reason"):
        admit(reg, "tox", adapter, base=str(base), check_fn=failing, force=True, reason="   ")
    assert _snapshot(reg) == before
    assert admit(reg, "tox", adapter, base=str(base), check_fn=passing).version == 2  # no version was burnt


def test_forced_entry_records_reason_and_event(reg: Registry, adapter: Path, base: Path) -> None:
    entry = admit(
        reg, "tox", adapter, base=str(base), check_fn=failing, force=True, reason="  known no-op, A/B  ", actor="bob"
    )
    assert entry.forced and entry.force_reason == "known no-op, A/B"
    assert entry.check_report["verdict"] == "fail" and entry.check_report["findings"][0]["code"] == "LG401"
    kinds = {e.kind: e for e in reg.events("tox@1")}
    assert set(kinds) == {"added", "forced"}
    assert kinds["forced"].detail == {"reason": "known no-op, A/B", "errors": ["LG401"]}
    clean = admit(reg, "tox", adapter, base=str(base), check_fn=passing, force=True, reason="unneeded")
    assert not clean.forced and clean.force_reason is None  # force on a clean adapter is not "forced"


def test_probe_runs_after_a_clean_check_and_its_errors_reject(
    reg: Registry, adapter: Path, base: Path, tmp_path: Path
) -> None:
    calls: list[tuple] = []

    def probe_fn(path: str, base_: str, *, rows: str) -> object:
        calls.append((path, base_, rows))
        return make_report("LG602")

    with pytest.raises(AdapterRejectedError, match="probe found 1 error"):
        admit(reg, "tox", adapter, base=str(base), check_fn=passing, probe_fn=probe_fn, probe_data="rows.csv")
    assert calls == [(str(adapter.resolve()), str(base.resolve()), "rows.csv")] and reg.list() == ()
    with pytest.raises(AdapterRejectedError, match="check found"):  # a failing check stops before the probe
        admit(reg, "tox", adapter, base=str(base), check_fn=failing, probe_fn=probe_fn, probe_data="rows.csv")
    assert len(calls) == 1
    entry = admit(
        reg,
        "tox",
        adapter,
        base=str(base),
        check_fn=passing,
        probe_fn=lambda *a, **k: make_report(),
        probe_data="rows.csv",
    )
    assert entry.probe_report is not None and entry.probe_report["verdict"] == "pass"
    with pytest.raises(InputError, match="local base folder"):
        admit(
            reg,
            "tox",
            adapter,
            base="Qwen/Qwen2.5-1.5B-Instruct",
            check_fn=passing,
            probe_fn=probe_fn,
            probe_data="rows.csv",
        )


def test_promote_retires_previous_production_of_the_same_name_only(reg: Registry, adapter: Path, base: Path) -> None:
    for name in ("tox", "tox", "tox", "spam"):
        admit(reg, name, adapter, base=str(base), check_fn=passing)
    assert reg.promote("spam@1").status is Status.PRODUCTION
    first = reg.promote("tox@1", actor="carol")
    assert (first.status, first.traffic_weight) == (Status.PRODUCTION, 1.0)
    reg.set_traffic("tox@2", 3.0)
    second = reg.promote("tox@2")
    assert (second.status, second.traffic_weight) == (Status.PRODUCTION, 3.0)  # a non-zero weight is kept
    states = {e.ref: (e.status, e.traffic_weight) for e in reg.list()}
    assert states == {
        "tox@1": (Status.RETIRED, 0.0),
        "tox@2": (Status.PRODUCTION, 3.0),
        "tox@3": (Status.CANDIDATE, 0.0),
        "spam@1": (Status.PRODUCTION, 1.0),
    }
    promoted = reg.events("tox@2")[0]
    assert promoted.kind == "promoted" and promoted.detail["retired"] == ["tox@1"]
    assert [e.kind for e in reg.events("tox@1")][:2] == ["retired", "promoted"]
    assert [e.ref for e in reg.list(status="production")] == ["spam@1", "tox@2"]
    assert [e.ref for e in reg.list(include_retired=False, name="tox")] == ["tox@2", "tox@3"]
    with pytest.raises(InputError, match="status"):
        reg.list(status="live")


def test_retire_and_set_traffic_validation(reg: Registry, adapter: Path, base: Path) -> None:
    admit(reg, "tox", adapter, base=str(base), check_fn=passing)
    canary = reg.set_traffic("tox", 0.25)
    assert canary.traffic_weight == 0.25 and not canary.shadow and canary.status is Status.CANDIDATE
    before = _snapshot(reg)
    for bad in (-0.1, math.nan, math.inf, "heavy"):
        with pytest.raises(InputError, match="traffic weight"):
            reg.set_traffic("tox@1", bad)  # type: ignore[arg-type]
    assert _snapshot(reg) == before
    retired = reg.retire("tox@1")
    assert (retired.status, retired.traffic_weight) == (Status.RETIRED, 0.0) and not retired.shadow
    with pytest.raises(RegistryError, match="retired"):
        reg.set_traffic("tox@1", 1.0)
    assert reg.get("tox@1").traffic_weight == 0.0
    assert reg.promote("tox@1").status is Status.PRODUCTION  # a rollback may bring a retired version back


def test_serving_matches_the_normalised_base(
    reg: Registry, adapter: Path, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    admit(reg, "tox", adapter, base="bases/qwen", check_fn=passing)
    admit(reg, "tox", adapter, base=str(base) + "/", check_fn=passing)
    admit(reg, "hub", adapter, base="Qwen/Qwen2.5-1.5B-Instruct", check_fn=passing)
    admit(reg, "old", adapter, base=str(base), check_fn=passing)
    reg.retire("old")
    assert normalize_base("./bases/../bases/qwen") == str(base.resolve())
    assert normalize_base("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"
    assert [e.ref for e in reg.serving("./bases/qwen")] == ["tox@1", "tox@2"]
    assert [e.ref for e in reg.serving(str(base.resolve()))] == ["tox@1", "tox@2"]
    assert [e.ref for e in reg.serving("Qwen/Qwen2.5-1.5B-Instruct")] == ["hub@1"]
    assert [e.ref for e in reg.list(base="bases/qwen")] == ["old@1", "tox@1", "tox@2"]


def test_verify_flags_a_one_byte_change_a_deleted_and_an_added_file(
    reg: Registry, adapter: Path, base: Path, tmp_path: Path
) -> None:
    other = make_adapter(tmp_path / "adapters" / "other")
    admit(reg, "tox", adapter, base=str(base), check_fn=passing)
    admit(reg, "other", other, base=str(base), check_fn=passing)
    admit(reg, "gone", make_adapter(tmp_path / "adapters" / "gone"), base=str(base), check_fn=passing)
    reg.retire("gone")
    assert [(r.ref, r.ok) for r in reg.verify()] == [("other@1", True), ("tox@1", True)]  # retired skipped
    weights = adapter / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0x01
    weights.write_bytes(bytes(data))
    (adapter / "tokenizer" / "vocab.txt").unlink()
    (adapter / "extra.bin").write_bytes(b"x")
    before = reg.revision()
    (result,) = reg.verify("tox")
    assert not result.ok
    assert (result.changed, result.missing, result.added) == (
        ("adapter_model.safetensors",),
        ("tokenizer/vocab.txt",),
        ("extra.bin",),
    )
    assert reg.revision() == before + 1
    failed = reg.events("tox@1")[0]
    assert failed.kind == "verify-failed" and failed.detail["changed"] == ["adapter_model.safetensors"]
    assert reg.events("other@1")[0].kind == "verified-ok"
    for path in sorted(other.iterdir()):
        path.unlink()
    other.rmdir()
    (gone,) = reg.verify("other@1")
    assert not gone.ok and gone.missing == ("adapter_config.json", "adapter_model.safetensors")


def test_record_event_and_revision_bumps_on_every_change_only(reg: Registry, adapter: Path, base: Path) -> None:
    rev = reg.revision()
    admit(reg, "tox", adapter, base=str(base), check_fn=passing)
    admit(reg, "toxic", adapter, base=str(base), check_fn=passing)
    assert reg.revision() == rev + 2
    reg.get("tox"), reg.list(), reg.serving(str(base)), reg.events()
    assert reg.revision() == rev + 2  # reads change nothing
    reg.record_event("alert", "tox@1", "p95 latency 2.1 s > 1 s", actor="server")
    reg.record_event("alert", None, {"metric": "drift", "value": 0.4})
    assert reg.revision() == rev + 4
    newest = reg.events(limit=2)
    assert [(e.kind, e.ref, dict(e.detail)) for e in newest] == [
        ("alert", None, {"metric": "drift", "value": 0.4}),
        ("alert", "tox@1", {"message": "p95 latency 2.1 s > 1 s"}),
    ]
    assert newest[1].actor == "server"
    assert [e.kind for e in reg.events("tox")] == ["alert", "added"]  # a name matches its versions, not "toxic"
    assert len(reg.events(limit=1)) == 1
    with pytest.raises(InputError):
        reg.record_event(" ", None, "x")
    with pytest.raises(InputError):
        reg.events(limit=0)


def test_sources_folders_files_and_hub_ids(
    reg: Registry, adapter: Path, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    with pytest.raises(InputError, match="a file"):
        admit(reg, "tox", adapter / "adapter_config.json", base=str(base), check_fn=passing)
    with pytest.raises(AdapterNotFoundError):
        admit(reg, "tox", tmp_path / "nowhere", base=str(base), check_fn=passing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty"):
        admit(reg, "tox", empty, base=str(base), check_fn=passing)
    snapshot = make_adapter(tmp_path / "hub-cache" / "snapshots" / "abc123")
    seen: list[str] = []

    def fake_download(repo_id: str, **kwargs: object) -> str:
        seen.append(repo_id)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    entry = admit(reg, "hubbed", "some-org/tox-lora", base="Qwen/Qwen2.5-1.5B-Instruct", check_fn=passing)
    assert seen == ["some-org/tox-lora"]
    assert entry.source == "some-org/tox-lora" and entry.path == str(snapshot.resolve())
    assert dict(entry.files) == hash_files(snapshot)

    def offline(repo_id: str, **kwargs: object) -> str:
        raise OSError("offline and not in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(HubUnavailableError, match=r"some-org/other.*Hugging Face Hub"):
        admit(reg, "hubbed", "some-org/other", base="Qwen/Qwen2.5-1.5B-Instruct", check_fn=passing)
    assert len(reg.list()) == 1


def test_hash_files_is_recursive_sorted_and_follows_file_symlinks(tmp_path: Path) -> None:
    folder = make_adapter(tmp_path / "a", nested=True)
    os.symlink(folder / "adapter_config.json", folder / "linked.json")
    hashes = hash_files(folder)
    assert list(hashes) == sorted(hashes) and "tokenizer/vocab.txt" in hashes
    assert hashes["linked.json"] == hashes["adapter_config.json"]
    import hashlib

    assert hashes["tokenizer/vocab.txt"] == hashlib.sha256(b"a\nb\n").hexdigest()
    with pytest.raises(InputError):
        hash_files(folder / "adapter_config.json")


def test_monitor_snapshots_are_kept_per_base_and_instance_without_bumping_the_revision(
    reg: Registry, base: Path, tmp_path: Path
) -> None:
    other_base = tmp_path / "other-base"
    other_base.mkdir()
    revision = reg.revision()
    reg.save_monitors(str(base), "host:8000", {"a@1": {"n": 3, "x": [1, 2]}, "b@2": {"n": 0}})
    reg.save_monitors(str(base), "host:8001", {"a@1": {"n": 9}})
    reg.save_monitors(str(other_base), "host:8000", {"c@1": {"n": 1}})
    assert reg.revision() == revision  # a server's own snapshot never makes servers reload
    assert reg.load_monitors(str(base), "host:8000") == {"a@1": {"n": 3, "x": [1, 2]}, "b@2": {"n": 0}}
    assert reg.load_monitors(f"{base}/", "host:8001") == {"a@1": {"n": 9}}  # the base is normalised
    reg.save_monitors(str(base), "host:8000", {"a@1": {"n": 4}})  # replaces that instance's snapshot
    assert reg.load_monitors(str(base), "host:8000") == {"a@1": {"n": 4}}
    assert reg.load_monitors(str(other_base), "host:8000") == {"c@1": {"n": 1}}
    assert reg.load_monitors(str(base), "elsewhere:1") == {}


def test_the_store_only_stores_what_admission_decided(reg: Registry, adapter: Path, base: Path) -> None:
    """`Registry.insert` runs no check: it records the reports and forced codes it is given, as given."""
    report = {"schema": "loraguard.check/1", "verdict": "fail", "findings": [{"code": "LG401"}]}
    with pytest.raises(InputError, match="--reason"):
        reg.insert(
            "tox",
            source="x",
            path=str(adapter),
            files={"a": "00"},
            base=str(base),
            task="T",
            check_report=report,
            forced=["LG401"],
        )
    assert reg.list() == ()
    entry = reg.insert(
        "tox",
        source="org/tox",
        path=str(adapter),
        files={"adapter_config.json": "ab" * 32},
        base=str(base) + "/",
        task="SEQ_CLS",
        check_report=report,
        forced=["LG401"],
        reason=" A/B ",
        tags=["x", "x"],
        actor="dora",
    )
    assert (entry.ref, entry.status, entry.shadow, entry.forced, entry.force_reason) == (
        "tox@1",
        Status.CANDIDATE,
        True,
        True,
        "A/B",
    )
    assert entry.check_report == report and entry.base == str(base.resolve()) and entry.tags == ("x",)
    assert [(e.kind, dict(e.detail).get("errors")) for e in reg.events("tox")] == [
        ("forced", ["LG401"]),
        ("added", None),
    ]
