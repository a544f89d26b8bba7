"""Commits: validation before writing, all-or-nothing, versions, statistics and diffs."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelyard.sdk.client import Client
from tests.datasets.conftest import image_rows, png


def test_schema_breaking_row_names_rows_and_fields_and_stores_nothing(images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(3), message="first")
    rows = image_rows(5)
    rows[1] = {"image": png(), "label": 7}  # wrong type
    rows[3] = {"image": b"not a png", "label": "a"}  # not an image
    rows[4] = {"image": png(), "label": "x", "extra": 1}  # unknown field
    with pytest.raises(InvalidArgument) as e:
        images.datasets.commit_rows("imgs", rows)
    details = e.value.details
    assert details["rows"] == [1, 3, 4]
    assert {"label", "image", "extra"} <= set(details["fields"])
    versions = images.datasets.versions("imgs")
    assert [v["version"] for v in versions] == [1]
    assert images.datasets.stats("imgs")["row_count"] == 3


def test_oversized_field_is_rejected(client: Client) -> None:
    client.datasets.create("talk", "text_intent")
    with pytest.raises(InvalidArgument) as e:
        client.datasets.commit_rows("talk", [{"text": "hi", "labels": ["greet"]},
                                             {"text": "x" * 20_000, "labels": ["greet"]}])
    assert e.value.details["rows"] == [1] and e.value.details["fields"] == ["text"]
    with pytest.raises(FailedPrecondition):
        client.datasets.stats("talk")


def test_duplicate_and_dotdot_names_are_rejected(images: Client) -> None:
    with pytest.raises(AlreadyExists):
        images.datasets.create("imgs", "image_classification")
    with pytest.raises(InvalidArgument) as e:
        images.datasets.create("a..b", "image_classification")
    assert e.value.details["field"] == "dataset name"
    with pytest.raises(InvalidArgument):
        images.datasets.create("new", "no_such_type")
    assert [d["name"] for d in images.datasets.list()["items"]] == ["imgs"]


def test_malformed_csv_upload_names_rows_and_stores_nothing(client: Client, tmp_path) -> None:
    client.datasets.create("talk", "text_intent")
    good = tmp_path / "good.csv"
    good.write_text('text,labels\nhello there,greet\n"bye, now",farewell\n')
    commit = client.datasets.upload_file("talk", good, message="csv")
    assert commit["row_count"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("text,labels\nhello,greet\nbye,farewell,extra\nok,fine\n")
    with pytest.raises(InvalidArgument) as e:
        client.datasets.upload_file("talk", bad)
    assert e.value.details["rows"] == [1]
    assert len(client.datasets.versions("talk")) == 1


def test_append_overwrite_delete_make_versions_with_stats(images: Client) -> None:
    c1 = images.datasets.commit_rows("imgs", image_rows(6), message="six", tags=["raw"])
    c2 = images.datasets.commit_rows("imgs", image_rows(3, start=6), message="three more")
    assert (c1["version"], c1["row_count"]) == (1, 6)
    assert (c2["version"], c2["row_count"], c2["rows_added"]) == (2, 9, 3)
    c3 = images.datasets.delete_rows("imgs", where="label = '0'", message="drop zeros")
    assert (c3["row_count"], c3["rows_removed"]) == (6, 3)
    rows = images.datasets.rows("imgs", limit=100)
    c4 = images.datasets.delete_rows("imgs", row_ids=[rows[0]["row_id"]])
    assert c4["row_count"] == 5
    c5 = images.datasets.commit_rows("imgs", image_rows(2), mode="overwrite")
    assert c5["row_count"] == 2
    assert [v["version"] for v in images.datasets.versions("imgs")] == [1, 2, 3, 4, 5]
    assert images.datasets.stats("imgs", version=2)["label_counts"] == {"0": 3, "1": 3, "2": 3}
    assert images.datasets.versions("imgs")[0]["tags"] == ["raw"]


def test_replace_swaps_rows_in_one_version_and_a_bad_replacement_changes_nothing(
        images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(6))  # values 0..5, labels 0,1,2,0,1,2
    zeros = [r["row_id"] for r in images.datasets.rows("imgs", limit=10) if r["label"] == "0"]
    c = images.datasets.replace_rows("imgs", image_rows(3, start=20), row_ids=zeros,
                                     message="relabelled")
    assert (c["version"], c["operation"], c["row_count"]) == (2, "replace", 7)
    assert (c["rows_added"], c["rows_removed"]) == (3, 2)
    d = images.datasets.diff("imgs", 1, 2)
    assert (d["rows_added"], d["rows_removed"], d["rows_unchanged"]) == (3, 2, 4)
    assert images.datasets.stats("imgs")["label_counts"] == {"0": 1, "1": 3, "2": 3}
    # content hash as if the same rows had been committed from scratch
    images.datasets.create("again", "image_classification")
    kept = [r for r in image_rows(6) if r["label"] != "0"] + image_rows(3, start=20)
    assert images.datasets.commit_rows("again", kept)["content_hash"] == c["content_hash"]

    with pytest.raises(InvalidArgument) as e:
        images.datasets.replace_rows("imgs", [{"image": b"not a png", "label": "1"}],
                                     where="label = '1'")
    assert e.value.details["rows"] == [0]
    assert [v["version"] for v in images.datasets.versions("imgs")] == [1, 2]
    assert images.datasets.stats("imgs")["label_counts"] == {"0": 1, "1": 3, "2": 3}
    after = images.datasets.commit_rows("imgs", image_rows(1, start=40))  # builds on version 2
    assert (after["version"], after["row_count"]) == (3, 8)


def test_overwrite_keeps_ids_of_unchanged_rows(images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(4))
    before = {r["row_hash"]: r["row_id"] for r in images.datasets.rows("imgs")}
    images.datasets.commit_rows("imgs", image_rows(5), mode="overwrite")
    after = {r["row_hash"]: r["row_id"] for r in images.datasets.rows("imgs")}
    assert all(after[h] == rid for h, rid in before.items())
    d = images.datasets.diff("imgs", 1, 2)
    assert (d["rows_added"], d["rows_removed"], d["rows_unchanged"]) == (1, 0, 4)


def test_digits_import_diff_and_stats(client: Client) -> None:
    c = client.datasets.import_builtin("digits", "sklearn:digits")
    assert c["row_count"] == 1797
    stats = client.datasets.stats("digits")
    assert sum(stats["label_counts"].values()) == 1797
    assert set(stats["label_counts"]) == {str(i) for i in range(10)}
    assert stats["summary"]["width"] == {"min": 8, "max": 8, "mean": 8.0}
    client.datasets.delete_rows("digits", where="label = '3' OR label = '5'")
    d = client.datasets.diff("digits", 1, 2)
    removed = stats["label_counts"]["3"] + stats["label_counts"]["5"]
    assert d["rows_removed"] == removed and d["rows_added"] == 0
    assert d["label_change"] == {"3": -stats["label_counts"]["3"], "5": -stats["label_counts"]["5"]}
    # the same import again brings those rows back and nothing else
    client.datasets.import_builtin("digits", "sklearn:digits")
    d13 = client.datasets.diff("digits", 1, 3)
    assert (d13["rows_added"], d13["rows_removed"]) == (0, 0)


def test_soft_delete_frees_the_name(images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(2))
    images.datasets.delete("imgs")
    with pytest.raises(NotFound):
        images.datasets.get("imgs")
    images.datasets.create("imgs", "text_intent")
    assert images.datasets.get("imgs")["head_version"] is None


def test_streamed_file_names_bad_rows_across_batches_and_stores_nothing(client: Client,
                                                                         tmp_path) -> None:
    import json

    client.datasets.create("talk", "text_intent")
    rows = [{"text": f"utterance {i}", "labels": ["a" if i % 2 else "b"]} for i in range(12_000)]
    rows[3] = {"text": "", "labels": ["a"]}
    rows[11_000] = {"text": "fine", "labels": []}
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(InvalidArgument) as e:
        client.datasets.upload_file("talk", path)
    assert e.value.details["rows"] == [3, 11_000]
    assert client.datasets.versions("talk") == []
    rows[3]["text"], rows[11_000]["labels"] = "now fine", ["b"]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    commit = client.datasets.upload_file("talk", path)
    assert commit["row_count"] == 12_000 and commit["stats"]["label_counts"] == {"a": 6000, "b": 6000}


def test_a_folder_upload_spans_several_row_groups_and_keeps_every_image(
        images: Client, api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.sdk import datasets as sdk_datasets

    monkeypatch.setattr(sdk_datasets, "FOLDER_GROUP_ROWS", 3)  # 10 images -> 4 row groups
    folder, sent = tmp_path / "pictures", {}
    for i, row in enumerate(image_rows(10)):
        (folder / row["label"]).mkdir(parents=True, exist_ok=True)
        (folder / row["label"] / f"{i}.png").write_bytes(row["image"])
        sent[row["image"]] = row["label"]
    out = images.datasets.upload_folder("imgs", folder)
    assert out["stats"]["row_count"] == 10
    service = api.app.state.platform.datasets
    stored = service.data(service.get_dataset("alpha", "imgs")).table(
        out["lance_version"], ["image", "label"]).to_pylist()
    assert {r["image"]: r["label"] for r in stored} == sent


def test_a_delete_that_removes_nothing_commits_nothing(images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(4))
    real = images.datasets.rows("imgs", limit=1)[0]["row_id"]
    with pytest.raises(FailedPrecondition) as e:
        images.datasets.delete_rows("imgs", row_ids=["r0000000000000000"])
    assert e.value.details["missing"] == ["r0000000000000000"]
    with pytest.raises(FailedPrecondition) as e:  # one real id does not make it partial
        images.datasets.delete_rows("imgs", row_ids=[real, "r0000000000000000"])
    with pytest.raises(FailedPrecondition) as e:
        images.datasets.delete_rows("imgs", where="label = 'no such label'")
    assert e.value.details["field"] == "where"
    with pytest.raises(FailedPrecondition):
        images.datasets.replace_rows("imgs", image_rows(1, start=9), row_ids=["rffff"])
    assert [v["version"] for v in images.datasets.versions("imgs")] == [1]
    assert images.datasets.stats("imgs")["row_count"] == 4


def test_a_csv_cell_holds_several_labels_separated_by_a_bar(client: Client, tmp_path) -> None:
    client.datasets.create("talk", "text_intent")
    f = tmp_path / "talk.csv"
    f.write_text("text,labels\nhello there,greet|smalltalk\nbye,farewell\nhi, greet | \n")
    c = client.datasets.upload_file("talk", f)
    assert c["stats"]["label_counts"] == {"farewell": 1, "greet": 2, "smalltalk": 1}
    assert client.datasets.rows("talk", limit=1)[0]["labels"] == ["greet", "smalltalk"]


def test_a_file_replaces_the_rows_a_filter_names_in_one_version(client: Client,
                                                               tmp_path) -> None:
    client.datasets.create("talk", "text_intent")
    client.datasets.commit_rows("talk", [{"text": "helo", "labels": ["greet"]},
                                         {"text": "bye", "labels": ["farewell"]}])
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text('{"text": "hello", "labels": ["greet"]}\n')
    c = client.datasets.upload_file("talk", fixed, mode="replace", where="text = 'helo'")
    assert (c["version"], c["operation"], c["rows_added"], c["rows_removed"]) == (2, "replace", 1, 1)
    assert sorted(r["text"] for r in client.datasets.rows("talk")) == ["bye", "hello"]
    with pytest.raises(InvalidArgument):  # a replace needs a filter or ids
        client.datasets.upload_file("talk", fixed, mode="replace")
    assert len(client.datasets.versions("talk")) == 2
