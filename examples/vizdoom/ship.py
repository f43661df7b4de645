"""Put the best ViZDoom-Two-Colors model into the zoo, with its card, a survival plot and a frame strip.

Reads what ``evaluate.py`` wrote (``runs/vizdoom/evaluation/evaluation.json``), picks the model with the best mean
reward (or ``--model``) and writes ``zoo/<backbone>-vizdoom/``: weights, card, ``survival.png`` (share of episodes
still alive at each step, every model beside the references) and ``frames.png`` (the shipped agent's view along
one episode), plus a manifest entry. The card holds every model's row beside RATE's Table 1, the data's recipe and
cost, every model's training time, and the commands that regenerate all of it.

    python examples/vizdoom/ship.py
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import lram_agents  # noqa: E402
from lram_agents.envs.vizdoom_two_colors import ENV_ID  # noqa: E402
from lram_agents.registry import add_to_manifest, manifest_entry  # noqa: E402
from lram_agents.run_configs import load_config_file  # noqa: E402
from lram_agents.serialization import atomic_write_text, save_figure  # noqa: E402
from lram_agents.training.metrics import run_summary  # noqa: E402

from evaluate import MODELS, PAPER, TICS_PER_STEP, mean_se, play_agent, table  # noqa: E402  (beside this script)
from make_data import summary as data_summary  # noqa: E402

HERE = Path(__file__).parent
STRIP_STEPS = (0, 10, 20, 40, 80, 160, 320, 640)  # the frames shown: the pillar, then ever later
# A few episodes cut short, played by the zoo agent as `lram_agents.load` gives it: tests/test_zoo_vizdoom.py plays
# them again and must get the same episodes (the 100-episode table is too slow for the test suite)
REPLAY = {"episodes": 4, "num_envs": 4, "max_steps": 150}


def mean_reward(episodes: list[dict]) -> float:
    return float(np.mean([e["return"] for e in episodes]))


def training_facts(name: str) -> dict:
    """Steps, minutes, final loss, parameters and data folder of ``examples/vizdoom/train_<name>.yaml``'s run."""
    config_path = HERE / f"train_{name}.yaml"
    config = load_config_file(config_path)
    output = Path(config["output_dir"])
    trainer = json.loads((output / "trainer_config.json").read_text())  # what the run used, not today's yaml
    model = lram_agents.load(output / "model", device="cpu").model
    return {"config": config_path.relative_to(HERE.parent.parent).as_posix(), **run_summary(output), "batch_size": trainer["batch_size"],
            "parameters": model.num_parameters(), "model_dir": str(output / "model"), "data": config["data"][0]["path"]}


def items_per_100_steps(episodes: list[dict]) -> float:
    return 100 * sum(e["good"] + e["bad"] for e in episodes) / max(sum(e["steps"] for e in episodes), 1)


def limits(report: dict, facts: dict) -> list[str]:
    """What the measurements say about why no model reached RATE's published reward."""
    lines = ["### What limited it", ""]
    for model, f in facts.items():
        episodes = report["results"][model]
        good, bad = sum(e["good"] for e in episodes), sum(e["bad"] for e in episodes)
        line = (f"* {MODELS.get(model, model)}: {items_per_100_steps(episodes):.1f} items per 100 steps, "
                f"{good / max(good + bad, 1):.0%} of them of the pillar's colour")
        if f["best_val_loss"] is not None:
            line += (f"; held-out loss lowest at step {f['best_val_step']} ({f['best_val_loss']:.4f}), "
                     f"{f['final_val_loss']:.4f} at the end while the training loss fell to {f['final_loss']:.4f}")
        lines.append(line + ".")
    scripted, random = (items_per_100_steps(report["references"][name]) for name in ("scripted", "random"))
    return lines + [
        "",
        f"(scripted memory policy: {scripted:.1f} items per 100 steps; random policy: {random:.1f}.) A share near 50% "
        "is what a policy blind to the colour gets: items picked up faster than the random policy's but at such a share "
        "mean a model learned to walk to items, not which colour to take. Where the "
        "held-out loss turns up while the training loss keeps falling, the run has started to learn its training "
        "episodes by heart: more episodes (the recurrent models and RATE only ever see the first 90 steps of each) "
        "would help before more steps.", ""]


def held_out(facts: dict) -> str:
    return "—" if facts.get("final_val_loss") is None else f"{facts['final_val_loss']:.4f}"


def survival_plot(report: dict, path: Path) -> None:
    """Share of the episodes still running after t steps, per model and reference."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    curves = {MODELS.get(n, n): e for n, e in report["results"].items()}
    curves.update({"scripted memory policy": report["references"]["scripted"], "random policy": report["references"]["random"]})
    t = np.arange(report["max_steps"] + 1)
    for k, (label, episodes) in enumerate(curves.items()):
        lengths = np.array([e["steps"] for e in episodes])
        ax.step(t, (lengths[None, :] > t[:, None]).mean(1), where="post", label=f"{label} (mean {lengths.mean():.0f})",
                linestyle="-" if k < len(curves) - 2 else "--")
    ax.set(xlabel="agent step", ylabel="share of episodes still alive", xscale="symlog", ylim=(0, 1.02),
           title=f"ViZDoom-Two-Colors: survival over {len(next(iter(curves.values())))} seeded episodes")
    rate_steps = PAPER["RATE"][1] / TICS_PER_STEP
    ax.axvline(rate_steps, color="grey", linewidth=0.8, linestyle=":",
               label=f"RATE's published mean lifetime ({rate_steps:.0f} steps, {PAPER['RATE'][1]} tics)")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110)


def frame_strip(agent, seed: int, path: Path) -> dict:
    """The agent's full-size view at :data:`STRIP_STEPS` of one episode (memory kept), with its outcome."""
    env = gym.make(ENV_ID, render_mode="rgb_array")
    frames, total, step = {}, 0.0, 0
    try:
        obs, info = env.reset(seed=seed)
        agent.reset()
        reward = None
        while True:
            if step in STRIP_STEPS:
                frames[step] = (env.render(), total, info)
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, reward))
            total, step = total + reward, step + 1
            if terminated or truncated:
                break
    finally:
        env.close()
    fig, axes = plt.subplots(1, len(frames), figsize=(2.2 * len(frames), 1.9))
    for ax, (at, (frame, so_far, at_info)) in zip(np.atleast_1d(axes), frames.items()):
        ax.imshow(frame)
        ax.set_title(f"step {at}: reward {so_far:.1f}\n{at_info['good_items']} good / {at_info['bad_items']} bad", fontsize=7)
        ax.axis("off")
    fig.suptitle(f"seed {seed}, {info['pillar_color']} pillar: {step} steps, reward {total:.2f}, "
                 f"{info['good_items']} good / {info['bad_items']} bad items", fontsize=8)
    save_figure(fig, path, dpi=100)
    return {"seed": seed, "steps": step, "return": total, "color": info["pillar_color"]}


def replay_episodes(agent, report: dict) -> dict:
    """:data:`REPLAY`'s episodes on the evaluation's first seeds, with its action choice (sampled or greedy)."""
    seeds = [report["seed_offset"] + i for i in range(REPLAY["episodes"])]
    episodes = play_agent(agent, seeds, REPLAY["num_envs"], REPLAY["max_steps"], report["greedy"])
    return {**REPLAY, "seeds": seeds, "greedy": report["greedy"], "results": episodes}


def card(name: str, model: str, report: dict, facts: dict, data: str, strip: dict, generic: str) -> str:
    shipped = report["results"][model]
    good, bad = sum(e["good"] for e in shipped), sum(e["bad"] for e in shipped)
    paper_best = float(PAPER["RATE"][0].split()[0])
    verdict = (f"above RATE's published {paper_best}" if mean_reward(shipped) > paper_best
               else f"**below** RATE's published {paper_best}")
    lines = [
        "## ViZDoom-Two-Colors: remember the pillar's colour, collect items of that colour", "",
        f"{MODELS.get(model, model)} trained offline on the scripted memory policy's episodes (`examples/vizdoom`), acting "
        f"with {'sampled' if not report['greedy'] else 'greedy'} actions and its memory carried through the episode. "
        f"On {report['episodes']} seeded episodes (seeds {report['seed_offset']}–{report['seed_offset'] + report['episodes'] - 1}, "
        f"none of them in the data; timeout {report['max_steps']:,} steps): reward {mean_se([e['return'] for e in shipped])}, "
        f"lifetime {mean_se([e['steps'] for e in shipped])} steps, {good / max(good + bad, 1):.0%} of the items it picks up "
        f"of the pillar's colour ({good} / {bad}): {verdict}.", "",
        "### Every model at one budget, beside RATE's Table 1", "",
        table(report), "",
        "Measured with `lram_agents.load` and the same seeds for every row. Good / bad items are counted by the env.", "",
        *(limits(report, facts) if mean_reward(shipped) <= paper_best else []),
        "![survival](survival.png)", "",
        "![frames](frames.png)", "",
        f"The shipped agent on seed {strip['seed']} ({strip['color']} pillar): {strip['steps']} steps, reward {strip['return']:.2f}.", "",
        "### Data", "",
        data, "",
        "### Training (one CPU thread each, two or more runs sharing two cores)", "",
        "| model | config | parameters | steps | batch | wall time | final loss | held-out loss |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {MODELS.get(m, m)} | `{f['config']}` | {f['parameters'] / 1e6:.2f}M | {f['steps']} | {f['batch_size']} | "
          f"{f['minutes']:.0f} min | {f['final_loss']:.4f} | {held_out(f)} |" for m, f in facts.items()], "",
        "Held-out loss: action cross-entropy on the episodes the run kept out of training (`validation_fraction`), "
        "at its last validation; far above the final loss means the model learned its training episodes by heart.",
        "", "## Reproduce", "", "```bash",
        "nice -n 10 python examples/vizdoom/make_data.py --shard 0/2 &  # one process per core",
        "nice -n 10 python examples/vizdoom/make_data.py --shard 1/2",
        *[f"nice -n 10 lram train {f['config']} --threads 1" for f in facts.values()],
        f"python examples/vizdoom/evaluate.py --episodes {report['episodes']} --max-steps {report['max_steps']}"
        + (" --greedy" if report["greedy"] else ""),
        f"python examples/vizdoom/ship.py --model {model}", "```", "",
    ]
    head, _, config = generic.partition("## Config")
    return head + "\n".join(lines) + "\n## Config" + config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluation", type=Path, default=Path("runs/vizdoom/evaluation"))
    parser.add_argument("--model", help="default: the best mean reward")
    parser.add_argument("--zoo", type=Path, default=HERE.parent.parent / "zoo")
    args = parser.parse_args(argv)
    report = json.loads((args.evaluation / "evaluation.json").read_text())
    # runs of the examples' configs (other evaluated variants stay in the table only)
    facts = {m: training_facts(m) for m in report["results"] if (HERE / f"train_{m}.yaml").is_file()}
    if not facts:
        raise SystemExit(f"none of the evaluated models {sorted(report['results'])} is a run of an examples/vizdoom/train_*.yaml")
    model = args.model or max(facts, key=lambda m: mean_reward(report["results"][m]))
    if model not in facts:
        raise SystemExit(f"--model {model!r} is not an evaluated run of an examples/vizdoom/train_*.yaml: choose from {sorted(facts)}")
    name = f"{model}-vizdoom"
    agent = lram_agents.load(facts[model]["model_dir"], device="cpu", deterministic=report["greedy"], seed=0)
    env = gym.make(ENV_ID)
    agent.bind(env)  # saves the spaces: the zoo agent acts without an env at hand
    env.close()
    directory = args.zoo / name
    shutil.rmtree(directory, ignore_errors=True)
    shipped = report["results"][model]
    headline = {"seeded episodes (timeout 4,200 steps)": len(shipped), "mean reward": mean_reward(shipped),
                "mean lifetime (steps)": float(np.mean([e["steps"] for e in shipped]))}
    agent.save_pretrained(directory, name=name, results=headline)
    survival_plot(report, directory / "survival.png")
    strip = frame_strip(agent, report["seed_offset"], directory / "frames.png")
    replay = replay_episodes(lram_agents.load(directory, seed=0, keep_memory=False), report)
    atomic_write_text(directory / "evaluation.json", json.dumps({**report, "shipped": model, "replay": replay}) + "\n")
    data = data_summary(Path(facts[model]["data"]))
    atomic_write_text(directory / "README.md", card(name, model, report, facts, data, strip, (directory / "README.md").read_text()))
    description = (f"{MODELS.get(model, model)} on ViZDoom-Two-Colors from RGB frames: mean reward {headline['mean reward']:.2f}, "
                   f"lifetime {headline['mean lifetime (steps)']:.0f} steps over {len(shipped)} seeded episodes (RATE's paper: 16.46, 745 tics = 372 steps).")
    add_to_manifest(args.zoo, manifest_entry(directory, name, description, local=name))
    size = sum(p.stat().st_size for p in directory.iterdir())
    print(f"shipped {model} as {name!r} in {directory} ({size / 1e3:.0f} kB on disk); manifest updated")


if __name__ == "__main__":
    main()
