"""``python -m koderz`` and the ``koderz`` script as a user runs them: runs, sweeps, help, logs
and every bad input (one stderr line naming the key, exit code 2)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from koderz.config import RunConfig
from tests.support.env import clean_env
from tests.support.fakes.scripted_server import Reply, Rules, ScriptedServer, fenced

QUIET = ["tracking=off", "cortex=off"]
pytestmark = pytest.mark.usefixtures("no_stray_processes")  # no process outlives a command
SCRIPT = Path(sys.executable).with_name("koderz")
REFERENCE_0 = "def has_close_elements(numbers, threshold):\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"


def koderz(
    cwd: Path, *args: str, entry: str = "module", timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command line: ``python -m koderz ARGS`` or the installed ``koderz ARGS``."""
    if entry == "script" and not SCRIPT.exists():
        pytest.skip("the koderz console script is not installed next to this interpreter")
    command = [sys.executable, "-m", "koderz"] if entry == "module" else [str(SCRIPT)]
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout
    )


def only_run_folder(root: Path) -> Path:
    folders = [p for p in (root / "outputs" / "runs").glob("*/*") if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def sweep_jobs(root: Path) -> list[Path]:
    """Every job folder of the one sweep under ``root`` (each directly in the sweep folder)."""
    sweeps = [p for p in (root / "outputs" / "sweeps").glob("*/*") if p.is_dir()]
    assert len(sweeps) == 1, sweeps
    return sorted((p for p in sweeps[0].iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[0]))


def plugin_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------------------- runs


def test_single_run_writes_a_complete_run_folder(tmp_path: Path) -> None:
    done = koderz(tmp_path, "end=4", "mode=iterative", *QUIET)
    assert done.returncode == 0, done.stderr
    folder = only_run_folder(tmp_path)
    assert {"config.yaml", "results.json", "results.jsonl", "samples.jsonl", "timing.json", "koderz.log"} <= {
        p.name for p in folder.iterdir()
    }
    results = json.loads((folder / "results.json").read_text())
    summary = results["summary"]
    assert (summary["problems"], summary["passed"], summary["pass_rate"]) == (4, 4, 1.0)
    assert [p["task_id"] for p in results["problems"]] == [f"HumanEval/{i}" for i in range(4)]
    for key in ("task_id", "passed", "attempts", "tests_passed", "tests_total", "error", "duration", "tokens", "cost"):
        assert key in results["problems"][0]
    assert len((folder / "results.jsonl").read_text().splitlines()) == 4
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert {s["sample_index"] for s in samples} == {0} and all(s["passed"] for s in samples)
    assert set(samples[0]) >= {"task_id", "sample_index", "solution", "passed", "tests_passed", "tests_total", "status"}
    assert "def has_close_elements" in samples[0]["solution"]
    assert "run folder:" in done.stdout + done.stderr


def test_the_koderz_console_script_equals_python_m_koderz(tmp_path: Path) -> None:
    done = koderz(tmp_path, "end=2", *QUIET, entry="script")
    assert done.returncode == 0, done.stderr
    assert json.loads((only_run_folder(tmp_path) / "results.json").read_text())["summary"]["passed"] == 2


def test_role_shorthand_picks_a_model_file_for_that_role(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"task_id": "HumanEval/0", "completion": "    return False\\n"}\n')
    done = koderz(tmp_path, "spec_model=replay", "spec_model.samples=s.jsonl", "end=1", *QUIET, timeout=60)
    assert done.returncode == 0, done.stderr
    config = (only_run_folder(tmp_path) / "config.yaml").read_text()
    assert "spec_model:\n  provider: replay" in config


def test_add_force_and_delete_overrides_reach_hydra(tmp_path: Path) -> None:
    done = koderz(
        tmp_path,
        "++concurrency=2",
        "+hydra.job.env_set.KODERZ_PROBE=1",
        "~hydra.callbacks.mlflow_sweep",
        "end=2",
        *QUIET,
    )
    assert done.returncode == 0, done.stderr
    folder = only_run_folder(tmp_path)
    assert yaml.safe_load((folder / "config.yaml").read_text())["concurrency"] == 2
    hydra_cfg = yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert hydra_cfg["job"]["env_set"] == {"KODERZ_PROBE": "1"}
    assert "mlflow_sweep" not in (hydra_cfg.get("callbacks") or {})


# ----------------------------------------------------------------------------- sweeps


def test_glob_range_and_choice_sweeps_compose_and_run_in_flat_safe_folders(tmp_path: Path) -> None:
    done = koderz(
        tmp_path,
        "-m",
        "model=glob(ref*)",
        "experiment=glob(no_c*)",
        "end=range(1,3)",
        "mode=choice(zero_shot,iterative)",
        "cortex.url=http://HEAD:8765/mcp",  # the README's cluster URL (unused with cortex=off)
        *QUIET,
    )
    assert done.returncode == 0, done.stderr
    jobs = sweep_jobs(tmp_path)
    assert len(jobs) == 8  # 1 model x 2 experiments x 2 ends x 2 modes
    seen = set()
    for num, job in enumerate(jobs):
        assert job.name.startswith(f"{num}_") and "cortex.url=HEAD-8765-mcp" in job.name
        assert "/" not in job.name and "\\" not in job.name and ":" not in job.name
        config = yaml.safe_load((job / "config.yaml").read_text())
        summary = json.loads((job / "results.json").read_text())["summary"]
        assert summary["problems"] == summary["passed"] == config["end"]
        assert config["model"]["name"] == "reference"
        seen.add((config["end"], config["mode"]["name"], config["checkpoints"]["enabled"], config["prompt"]["cot"]))
    assert {(end, mode) for end, mode, _, _ in seen} == {(e, m) for e in (1, 2) for m in ("zero_shot", "iterative")}
    assert {(checkpoints, cot) for _, _, checkpoints, cot in seen} == {(False, True), (True, False)}


def test_a_sweep_with_a_bad_job_is_refused_before_any_job_runs(tmp_path: Path) -> None:
    """Every job's config is checked before the sweep starts: no sweep folder, no job ran."""
    done = koderz(tmp_path, "-m", "concurrency=0,1", "end=1", *QUIET)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == ["koderz: error: concurrency=0: must be at least 1"]
    assert not (tmp_path / "outputs").exists()


def test_a_sweep_with_a_job_left_unanswered_says_which_and_exits_3(tmp_path: Path) -> None:
    """The server refuses HumanEval/1 (HTTP 400: no retry): the end=2 job leaves it without a
    verdict, the end=1 job is complete; the sweep names the job and exits as that job would."""
    script = Rules([("separate_paren_groups", [Reply(status=400, error="refused")])], default=fenced(REFERENCE_0))
    env = clean_env(OPENAI_API_KEY="sk-test")
    with ScriptedServer(script).in_thread() as server:
        model = ["model=gpt-4o-mini", f"model.base_url={server.openai_url}", "spec.enabled=false"]
        done = koderz(tmp_path, "-m", "end=1,2", *model, *QUIET, env=env)
    assert done.returncode == 3, (done.stdout, done.stderr)
    complete, unanswered = sweep_jobs(tmp_path)
    line = next(x for x in (done.stdout + done.stderr).splitlines() if "jobs complete" in x)
    assert "1 jobs complete" in line and f"1 with problems left without a verdict ({unanswered.name})" in line
    assert complete.name not in line


# ---------------------------------------------------------------------- bad input

BAD_INPUTS: list[tuple[list[str], str]] = [
    # unknown group options (the choices are listed)
    (["model=no-such-model"], "model=no-such-model: no option 'no-such-model' in config group model (choose from"),
    (["dataset=nope"], "dataset=nope: no option 'nope' in config group dataset (choose from bigcodebench, humaneval"),
    (["mode=nope"], "mode=nope: no option"),
    (["spec_model=nope"], "spec_model=nope: no option 'nope' in config group model"),
    (["checkpoint_model=nope"], "checkpoint_model=nope: no option"),
    (["-m", "mode=nope,zero_shot"], "mode=nope,zero_shot: no option 'nope'"),
    (["-m", "dataset=range(1,2)"], "dataset=range(1,2): a config group takes option names"),
    # types
    (["temperature=abc"], "temperature=abc: expected a number"),
    (["concurrency=abc"], "concurrency=abc: expected an integer"),
    (["model.temperature=hot"], "model.temperature=hot: expected a number"),
    (["debug=maybe"], "debug=maybe: expected true or false"),
    (["n_samples=1.5"], "n_samples=1.5: expected an integer"),
    (["problems=HumanEval/0"], "problems=HumanEval/0: expected a list, e.g. problems=[HumanEval/0]"),
    # keys
    (["foo=1"], "foo=1: koderz has no such key"),
    (["model.temprature=0.2"], "model.temprature=0.2: koderz has no such key (did you mean model.temperature?)"),
    (["+foo=1"], "foo: koderz has no such key"),
    (["~debug"], "debug: removed, but koderz needs it"),
    (["~seed"], "~seed: "),
    (["seed=${nope}"], "seed: Interpolation key 'nope' not found"),
    # values and ranges
    (["concurrency=0"], "concurrency=0: must be at least 1"),
    (["start=5", "end=2"], "end=2: must be greater than start=5"),
    (["end=99999"], "end=99999: dataset humaneval has only 164 tasks"),
    (["problems=[HumanEval/999]"], "problems: HumanEval/999 is not a task of dataset humaneval"),
    (["problems=[HumanEval/0,HumanEval/0]"], "problems: HumanEval/0 is listed twice"),
    # a chosen file's open values
    (["model=openai_compatible"], "model.name: needs a value (model=openai_compatible leaves it open)"),
    (["model=openai_compatible", "model.name=m"], "model.base_url: needs a value (model=openai_compatible"),
    (["model=replay", "model.samples=missing.jsonl"], "missing.jsonl"),
    (["model=replay", "model.samples=bad.jsonl"], "line 2"),
    (["model=gpt-4o-mini"], "OPENAI_API_KEY"),  # the preflight, once the run has started
    # grammar and sweeps
    (["model=glob("], "model=glob(: not valid override syntax"),
    (["model=reference,replay"], "model=reference,replay: several values need -m"),
    (["model=choice(reference,replay)"], "model=choice(reference,replay): a sweep expression needs -m"),
    (["-m", "temperature=interval(0,1)"], "temperature=interval(0,1): interval() needs a sampling sweeper"),
    # flags and search path
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["end=2", "-m", "mode=zero_shot,iterative"], "mode=zero_shot,iterative: overrides go after the flags"),
    (["--config-dir", "no-such-dir"], "--config-dir "),
    (["hydra.searchpath=[file://no-such-dir]"], "hydra.searchpath: no-such-dir is not available"),
]
MISSING_EXTRAS = [
    (["hparams_search=optuna"], "hydra_plugins.hydra_optuna_sweeper", "hparams_search=optuna: needs the plugin"),
    (["-m", "hydra/launcher=ray"], "hydra_plugins.hydra_ray_launcher", "pip install 'koderz[ray]'"),
    (["-m", "hydra/launcher=submitit_slurm"], "hydra_plugins.hydra_submitit_launcher", "pip install 'koderz[slurm]'"),
]


def with_quiet(args: list[str]) -> list[str]:
    """``QUIET`` after the case's leading flags (Hydra reads flags first) and before its
    overrides (so the case's ``cortex=nope`` wins over ``cortex=off``)."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("--config-dir", "--config-name") else 1
    return [*args[:i], *QUIET, *args[i:]]


def assert_one_line_error(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("koderz: error: ") and needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needle", "entry"),
    [(args, needle, ("module", "script")[i % 2]) for i, (args, needle) in enumerate(BAD_INPUTS)],
    ids=[" ".join(args) for args, _ in BAD_INPUTS],
)
def test_bad_input_is_one_stderr_line_naming_the_key_and_exit_code_2(
    tmp_path: Path, args: list[str], needle: str, entry: str
) -> None:
    """Every case runs the real command line; they alternate between ``python -m koderz``
    and the installed ``koderz`` script (the same ``main``)."""
    (tmp_path / "bad.jsonl").write_text('{"task_id": "HumanEval/0", "solution": "x = 1"}\n{oops\n')
    assert_one_line_error(koderz(tmp_path, *with_quiet(args), entry=entry, timeout=120), needle)


@pytest.mark.parametrize(("args", "plugin", "needle"), MISSING_EXTRAS, ids=[a[-1] for a, _, _ in MISSING_EXTRAS])
def test_a_missing_plugin_names_the_extra_to_install(tmp_path: Path, args: list[str], plugin: str, needle: str) -> None:
    if plugin_installed(plugin):
        pytest.skip(f"{plugin} is installed here")
    assert_one_line_error(koderz(tmp_path, *with_quiet(args), timeout=60), needle)


def test_bad_input_with_hydra_full_error_shows_the_traceback(tmp_path: Path) -> None:
    done = koderz(tmp_path, "foo=1", *QUIET, env=clean_env(HYDRA_FULL_ERROR="1"), timeout=60)
    assert done.returncode == 1 and "Traceback" in done.stderr and "Key 'foo' not in 'RunConfig'" in done.stderr


def test_a_bug_inside_a_job_shows_its_traceback_not_a_one_line_error(tmp_path: Path) -> None:
    """A stand-in crash (``Runner.run`` replaced by a coroutine that raises) inside the real app."""
    crash = (
        "import sys\n"
        "import koderz.cli.app as app\n"
        "from koderz.runner import Runner\n"
        "async def crash(self):\n"
        "    raise RuntimeError('stand-in bug')\n"
        "Runner.run = crash\n"
        "sys.argv = ['koderz', 'end=1', 'tracking=off', 'cortex=off']\n"
        "app.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", crash], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" in done.stderr and "RuntimeError: stand-in bug" in done.stderr
    assert "koderz: error:" not in done.stderr


# ----------------------------------------------------------------- help, configs, logs


def test_help_is_koderz_own_page(tmp_path: Path) -> None:
    done = koderz(tmp_path, "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("koderz: how well do code-generation models solve programming problems")
    for group, option in [("model", "gpt-4o-mini"), ("dataset", "mbpp_plus"), ("mode", "iterative"),
                          ("cortex", "persistent"), ("tracking", "off"), ("experiment", "no_spec")]:  # fmt: skip
        assert any(line.startswith(f"{group}: ") and option in line for line in text.splitlines()), group
    assert "spec_model: any model option" in text and "checkpoint_model: any model option" in text
    examples = text.split("== Examples ==")[1].split("==")[0]
    assert sum(line.startswith("python -m koderz") for line in examples.splitlines()) == 5
    assert "outputs/runs/<date>/<time>/" in text and "outputs/sweeps/" in text
    for name, field_type in RunConfig.__annotations__.items():
        if "Config" not in str(field_type) and "Settings" not in str(field_type):
            assert name in text, f"run key {name} is missing from --help"
    assert "price_input" not in text  # no dump of the composed config
    assert len(text.splitlines()) < 80


def test_a_users_config_dir_adds_options_and_a_primary_config(tmp_path: Path) -> None:
    mine = tmp_path / "my-conf"
    (mine / "model").mkdir(parents=True)
    (mine / "model" / "my-reference.yaml").write_text("defaults: [reference, _self_]\nname: my-reference\n")
    (mine / "mine.yaml").write_text(
        'defaults:\n  - config\n  - override model: my-reference\n  - override tracking: "off"\n'
        '  - override cortex: "off"\n  - _self_\nend: 2\n'
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    help_text = koderz(work, "--config-dir", str(mine), "--help", timeout=60).stdout
    assert "my-reference" in next(line for line in help_text.splitlines() if line.startswith("model: "))
    done = koderz(work, "--config-dir", str(mine), "--config-name", "mine")
    assert done.returncode == 0, done.stderr
    folder = only_run_folder(work)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert (config["model"]["name"], config["model"]["provider"], config["end"]) == ("my-reference", "reference", 2)
    assert json.loads((folder / "results.json").read_text())["summary"]["passed"] == 2


def test_library_logs_go_to_koderz_log_and_hydra_verbose_brings_them_back(tmp_path: Path) -> None:
    """A real OpenAI client against the scripted server (a fake, on 127.0.0.1): one 429
    first, so a retry notice is logged too."""
    script = Rules(default=fenced(REFERENCE_0), faults=[Reply(status=429, error="slow down")])
    quiet_dir, verbose_dir = tmp_path / "quiet", tmp_path / "verbose"
    quiet_dir.mkdir()
    verbose_dir.mkdir()
    env = clean_env(OPENAI_API_KEY="sk-test")
    with ScriptedServer(script).in_thread() as server:
        model = ["model=gpt-4o-mini", f"model.base_url={server.openai_url}", "model.retry_backoff=0.05", "end=1"]
        quiet = koderz(quiet_dir, *model, *QUIET, env=env)
        verbose = koderz(verbose_dir, *model, "hydra.verbose=true", *QUIET, env=env)
    assert quiet.returncode == 0 and verbose.returncode == 0, (quiet.stderr, verbose.stderr)
    console = quiet.stdout + quiet.stderr
    assert "HTTP Request" not in console and "; retry 1/" not in console
    assert "run folder:" in console and "HumanEval/0 PASS" in console  # koderz's own records stay
    log = (only_run_folder(quiet_dir) / "koderz.log").read_text()
    assert "HTTP Request: POST" in log and "; retry 1/" in log
    assert "HTTP Request: POST" in verbose.stdout + verbose.stderr


def test_no_heavy_import_before_the_checks_pass(tmp_path: Path) -> None:
    """What ``main`` has imported when a bad input stops it, and (the control) after a run."""
    probe = (
        "import json, sys\n"
        "from koderz.cli.app import main\n"
        "sys.argv = ['koderz', *sys.argv[1:], 'tracking=off', 'cortex=off']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "else:\n"
        "    code = 0\n"
        "heavy = ('openai', 'ollama', 'mlflow', 'mcp', 'httpx', 'httpx2', 'aiohttp', 'koderz.runner',\n"
        "         'koderz.experiment', 'koderz.sandbox', 'koderz.models.registry')\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.startswith(heavy))]))\n"
    )

    def imported(*args: str) -> tuple[int, list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        code, modules = json.loads(done.stdout.strip().splitlines()[-1])
        return code, modules

    assert imported("end=99999") == (2, [])
    assert imported("model=openai_compatible") == (2, [])
    code, modules = imported("end=1")
    assert code == 0 and "koderz.runner" in modules
