"""Provider registry, config validation and the conf/model files against the schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from koderz.errors import ConfigError
from koderz.models.config import TIERS, ModelConfig
from koderz.models.ollama_client import OllamaModel
from koderz.models.openai_client import OpenAIModel
from koderz.models.registry import PROVIDERS, ClientPool, build_model

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "koderz" / "conf" / "model"
NETWORK_MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-5-mini",
    "gpt-5-nano",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-5",
    "qwen2.5-coder-32b",
    "qwen3-coder",
    "gpt-oss-20b",
    "codellama-70b",
    "llama3.3-70b",
]


def load(name: str):
    return OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(MODEL_DIR / f"{name}.yaml"))


def test_registry_picks_the_class_from_provider():
    pool = ClientPool()
    assert isinstance(build_model(ModelConfig(provider="openai", name="m"), pool), OpenAIModel)
    assert isinstance(build_model(ModelConfig(provider="ollama", name="m", tier="local"), pool), OllamaModel)
    assert set(PROVIDERS) == {"openai", "ollama", "reference", "replay"}


@pytest.mark.parametrize(
    "overrides,bad",
    [
        ({"provider": "bedrock"}, "provider='bedrock'"),
        ({"tier": "huge"}, "tier='huge'"),
        ({"max_tokens_param": "max_output"}, "max_tokens_param='max_output'"),
        ({"price_input": -1.0}, "price_input=-1.0"),
        ({"max_concurrency": 0}, "max_concurrency=0"),
        ({"breaker_failures": 0}, "breaker_failures=0"),
        ({"breaker_wait": -1.0}, "breaker_wait=-1.0"),
    ],
)
def test_bad_config_values_are_named(overrides, bad):
    with pytest.raises(ConfigError, match=bad.replace("(", r"\(")):
        build_model(ModelConfig(name="m", **overrides), ClientPool())


def test_importing_the_registry_loads_no_sdk():
    code = "import sys, koderz.models.registry; print('openai' in sys.modules, 'ollama' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("name", NETWORK_MODELS)
def test_model_files_match_the_schema_with_tier_and_prices(name, monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    cfg = load(name)
    assert cfg.tier in TIERS and cfg.provider in ("openai", "ollama")
    assert cfg.price_input >= 0 and cfg.price_output >= 0
    if cfg.provider == "ollama":
        assert cfg.tier == "local" and cfg.price_input == cfg.price_output == 0
        assert cfg.host == "http://localhost:11434" and cfg.num_ctx >= 5120
        assert cfg.num_ctx - cfg.max_tokens >= 3072  # room for the prompt beside the answer
    else:
        assert cfg.price_output > cfg.price_input > 0
    if name.startswith("claude"):
        assert cfg.base_url == "https://api.anthropic.com/v1/" and cfg.api_key_env == "ANTHROPIC_API_KEY"
    if name.startswith("gpt-5"):
        assert cfg.max_tokens_param == "max_completion_tokens"
    typed = OmegaConf.to_object(cfg)
    assert isinstance(typed, ModelConfig)
    build_model(typed, ClientPool())  # valid for the registry


def test_ollama_host_follows_the_environment(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box:11434")
    assert load("qwen2.5-coder-32b").host == "http://gpu-box:11434"


def test_openai_compatible_requires_a_base_url_and_a_name():
    cfg = load("openai_compatible")
    with pytest.raises(MissingMandatoryValue):
        _ = cfg.name
    cfg.name = "Qwen/Qwen2.5-Coder-7B-Instruct"
    with pytest.raises(ConfigError, match=r"model.base_url is required"):
        build_model(cfg, ClientPool())
    cfg.base_url = "http://127.0.0.1:8000/v1"
    model = build_model(cfg, ClientPool())
    assert isinstance(model, OpenAIModel)
    assert model.url == "http://127.0.0.1:8000/v1" and cfg.api_key_env is None and cfg.tier == "local"


def test_any_role_can_use_any_model_in_the_composed_config(monkeypatch):
    from hydra import compose, initialize_config_dir

    from koderz.config import register

    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    register()
    overrides = ["model=gpt-4o-mini", "model@spec_model=gpt-oss-20b", "model@checkpoint_model=claude-sonnet-4-5"]
    with initialize_config_dir(config_dir=str(ROOT / "koderz" / "conf"), version_base=None):
        cfg = compose("config", overrides=overrides)
    pool = ClientPool()
    roles = {role: build_model(cfg[role], pool) for role in ("model", "spec_model", "checkpoint_model")}
    assert isinstance(roles["model"], OpenAIModel) and roles["model"].url == "https://api.openai.com/v1"
    assert isinstance(roles["spec_model"], OllamaModel) and roles["spec_model"].url == "http://localhost:11434"
    assert roles["checkpoint_model"].url == "https://api.anthropic.com/v1"
    assert cfg.checkpoint_model.api_key_env == "ANTHROPIC_API_KEY"
