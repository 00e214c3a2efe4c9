"""dataset=bigcodebench: koderz's own file in the published format, read from JSONL, JSONL.gz,
parquet and a saved ``datasets`` folder (the hub's code path), with one-line errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from koderz.datasets import bigcodebench
from koderz.errors import ConfigError, DatasetError
from koderz.problems import content_key, load_benchmark
from tests.support.bench_files import BCB_FILE, BCB_HARD_FILE, bcb_config


def test_the_full_file_loads_every_task_with_its_libs_and_prompts():
    problems = load_benchmark(bcb_config())
    rows = [json.loads(line) for line in BCB_FILE.read_text().splitlines()]
    assert [p.task_id for p in problems] == [r["task_id"] for r in rows]
    assert len(problems) >= 40
    first = bigcodebench.task_of(problems[0])
    assert problems[0].prompt == rows[0]["complete_prompt"]
    assert first.libs == ("collections",)
    assert first.release.startswith("sha256:")  # a local file's release is its content hash
    assert (
        bigcodebench.reference_program(problems[0]) == rows[0]["complete_prompt"] + "\n" + rows[0]["canonical_solution"]
    )


def test_instruct_split_gives_the_instruct_prompt_and_hard_subset_is_recorded():
    problems = load_benchmark(bcb_config(split="instruct", subset="hard", path=str(BCB_HARD_FILE)))
    rows = [json.loads(line) for line in BCB_HARD_FILE.read_text().splitlines()]
    assert [p.prompt for p in problems] == [r["instruct_prompt"] for r in rows]
    assert {bigcodebench.task_of(p).subset for p in problems} == {bigcodebench.Subset.HARD}


def test_gz_parquet_and_saved_folder_give_the_same_tasks(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    reference = load_benchmark(bcb_config())
    gz = tmp_path / "tasks.jsonl.gz"
    gz.write_bytes(gzip.compress(BCB_FILE.read_bytes()))
    rows = [json.loads(line) for line in BCB_FILE.read_text().splitlines()]
    table = datasets.Dataset.from_list(rows)
    table.to_parquet(str(tmp_path / "tasks.parquet"))
    datasets.DatasetDict({"v0.1.4": table}).save_to_disk(str(tmp_path / "saved"))
    for path in (gz, tmp_path / "tasks.parquet", tmp_path / "saved"):
        loaded = load_benchmark(bcb_config(path=str(path)))
        assert [(p.task_id, p.prompt, p.tests, p.canonical_solution) for p in loaded] == [
            (p.task_id, p.prompt, p.tests, p.canonical_solution) for p in reference
        ]


def test_the_content_key_follows_the_tasks_the_keys_choosing_them_and_the_library_environment(tmp_path: Path):
    """The result cache's dataset version for a benchmark: a parquet copy of the same tasks is the
    same key; another task, subset, split, time limit or installed library version is another."""
    libraries = tmp_path / "site-packages"
    (libraries / "pandas-2.2.0.dist-info").mkdir(parents=True)

    def key(cfg=None, paths=(str(libraries),)) -> str:
        cfg = cfg or bcb_config()
        return content_key(cfg, load_benchmark(cfg), paths)

    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in BCB_FILE.read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "tasks.parquet")
    base = key()
    assert key() == base == key(bcb_config(path=str(tmp_path / "tasks.parquet")))
    rows[0]["test"] = rows[0]["test"].replace("assert", "assert  ", 1)
    (tmp_path / "changed.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    others = [
        key(bcb_config(path=str(tmp_path / "changed.jsonl"))),
        key(bcb_config(subset="hard")),
        key(bcb_config(split="instruct")),
        key(bcb_config(time_limit=10.0)),
    ]
    (libraries / "pandas-2.2.0.dist-info").rename(libraries / "pandas-2.2.1.dist-info")
    others.append(key())
    assert len({base, *others}) == len(others) + 1


def test_missing_file_and_bad_rows_are_one_line_errors(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"^dataset\.path=.*nope\.jsonl: no such file or folder$"):
        load_benchmark(bcb_config(path=str(tmp_path / "nope.jsonl")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    with pytest.raises(DatasetError, match="row 0 lacks complete_prompt"):
        load_benchmark(bcb_config(path=str(bad)))
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(DatasetError) as caught:
        load_benchmark(bcb_config(path=str(broken)))
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"dataset\.subset=medium"):
        load_benchmark(bcb_config(subset="medium"))


def test_the_hub_path_fails_in_one_line_when_offline(tmp_path: Path):
    script = (
        "from koderz.config import DatasetConfig\n"
        "from koderz.problems import load_benchmark\n"
        "from koderz.errors import DatasetError\n"
        "try:\n    load_benchmark(DatasetConfig(name='bigcodebench', path='koderz-nobody/no-such-set'))\n"
        "except DatasetError as e:\n    print('ERR', e)\n"
    )
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(tmp_path), check=False)  # fmt: skip
    assert done.stdout.startswith("ERR dataset.path=koderz-nobody/no-such-set: cannot load it from the hub"), done
    assert done.stdout.count("\n") == 1
