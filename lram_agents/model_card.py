"""The model card (README.md) written beside a saved agent: what it is, how to use it, what it scored."""

from __future__ import annotations

import json
from typing import Any, Mapping

from lram_agents.preprocessing import Preprocessing


def model_card(name: str, model, preprocessing: Preprocessing, results: Mapping[str, Any] | None) -> str:
    """Markdown with Hugging Face front matter. ``results``: measured numbers, rendered as a table."""
    config = model.config
    backbone = config.backbone
    lines = [
        "---",
        "library_name: lram_agents",
        f"tags: [reinforcement-learning, lram, {backbone.type}]",
        "---",
        f"# {name}",
        "",
        f"A recurrent large action model with a **{backbone.type}** backbone "
        f"({parameter_count(model.num_parameters())} parameters, d_model {config.d_model}).",
        "",
        "```python",
        "import lram_agents",
        f'agent = lram_agents.load("{name}")  # or the path of this directory',
        "action = agent.act(obs, reward)  # reward: what the previous action received",
        "```",
        "",
        "## Preprocessing",
        "",
        "| setting | value |",
        "| --- | --- |",
        *_conditioning(preprocessing),
        f"| memory across episodes | {'kept (in-context)' if preprocessing.keep_memory else 'cleared'} |",
        f"| actions | {_actions_row(preprocessing)} |",
        f"| observation space | {_space(preprocessing.observation_space)} |",
        f"| action space | {_space(preprocessing.action_space)} |",
        "",
        "## Results",
        "",
        *_results(results),
        "",
        "## Config",
        "",
        "```json",
        json.dumps(config.to_dict(), indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def _conditioning(preprocessing: Preprocessing) -> list[str]:
    if preprocessing.tasks is None:
        return [f"| reward scale | {preprocessing.reward_scale} |", f"| target return | {preprocessing.target_return} |"]
    tasks = [k for k in preprocessing.tasks if not k.startswith("domain:")]
    domains = [k.split(":", 1)[1] for k in preprocessing.tasks if k.startswith("domain:")]
    return [f"| reward scale, target return | per task, picked by `agent.bind(env)` from the env id ({len(tasks)} tasks; "
            f"other tasks of {', '.join(domains) or 'no domain'}: the domain's scale and median target) |"]


def _results(results: Mapping[str, Any] | None) -> list[str]:
    if not results:
        return ["Not evaluated: this checkpoint has no measured results."]
    rows = [f"| {key} | {_value(value)} |" for key, value in results.items()]
    return ["| metric | value |", "| --- | --- |", *rows]


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _space(data: dict | None) -> str:
    if data is None:
        return "not recorded"
    if data["type"] == "Discrete":
        return f"Discrete({data['n']})"
    if data["type"] == "MultiDiscrete":
        return f"MultiDiscrete({data['nvec']})"
    return f"Box(shape={tuple(data['shape'])}, dtype={data['dtype']})"


def _actions_row(preprocessing: Preprocessing) -> str:
    if not preprocessing.deterministic:
        return "sampled (load with deterministic=True for argmax)"
    if preprocessing.continuous_decoding == "mean":
        return "deterministic: argmax for discrete actions, the expected value over the bins for continuous ones"
    return "argmax"


def parameter_count(n: int) -> str:
    """206.3M, 18.5k or 950: readable at every model size (the zoo holds 18k-parameter models too)."""
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)
