"""The Agent: batched vs separate acting, episode boundaries, return-to-go bookkeeping, input errors."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import SMALL_BACKBONES, random_timesteps, slice_steps, small_config
from lram_agents.agent import Agent
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import Preprocessing
from stubs import CountingEnv, counter_model, record_logits

OBS_SPACE = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)


def _counter_agent(**options) -> Agent:
    return Agent(counter_model(), observation_space=OBS_SPACE, action_space=gym.spaces.Discrete(18), **options)


def test_each_env_is_reset_at_its_own_episode_starts(counter_backbone):
    agent = _counter_agent()
    obs = np.zeros((3, 2), np.float32)
    assert agent.act_batch(obs).tolist() == [0, 0, 0]
    assert agent.act_batch(obs, [1.0, 1.0, 1.0]).tolist() == [1, 1, 1]
    assert agent.act_batch(obs, [1.0, 1.0, 1.0], episode_start=[False, True, False]).tolist() == [2, 0, 2]
    assert agent.act_batch(obs, [1.0, 1.0, 1.0], episode_start=[True, False, False]).tolist() == [0, 1, 3]
    keeping = _counter_agent(keep_memory=True)
    keeping.act_batch(obs)
    assert keeping.act_batch(obs, [1.0] * 3, episode_start=[True, True, False]).tolist() == [1, 1, 1]


def test_the_reset_mask_reaches_the_model_only_when_a_row_starts(counter_backbone):
    agent = _counter_agent()
    obs = np.zeros((2, 2), np.float32)
    masks = agent.model.backbone.reset_masks
    agent.act_batch(obs)  # fresh memory: nothing to empty
    agent.act_batch(obs, [0.0, 0.0])
    agent.act_batch(obs, [0.0, 0.0], episode_start=[False, False])
    assert masks == []
    agent.act_batch(obs, [0.0, 0.0], episode_start=[False, True])
    assert len(masks) == 1 and masks[0].tolist() == [False, True]
    keeping = _counter_agent(keep_memory=True)
    keeping.act_batch(obs)
    keeping.act_batch(obs, [0.0, 0.0], episode_start=[True, True])
    assert keeping.model.backbone.reset_masks == []


def _record_inputs(agent: Agent) -> list:
    """Make the agent's model record the (prev_reward, return_to_go) it is fed at every call."""
    seen, forward = [], agent.model.forward

    def recording(steps, state=None, episode_start=None):
        seen.append((steps.prev_rewards[:, 0].tolist(), steps.returns_to_go[:, 0].tolist()))
        return forward(steps, state, episode_start)

    agent.model.forward = recording
    return seen


@pytest.mark.parametrize("keep_memory", [False, True])
def test_return_to_go_and_the_last_reward_of_an_episode(counter_backbone, keep_memory):
    pre = Preprocessing(reward_scale=2.0, target_return=10.0)
    agent = Agent(counter_model(), pre, OBS_SPACE, gym.spaces.Discrete(18), keep_memory=keep_memory)
    seen = _record_inputs(agent)
    obs = np.zeros(2, np.float32)
    agent.act(obs)  # R̂ = 10 / 2
    agent.act(obs, 2.0)  # r = 2 -> token 1, R̂ = 5 - 1
    agent.act(obs, 4.0)  # r = 4 -> token 2, R̂ = 4 - 2
    agent.reset()
    agent.act(obs, 6.0)  # the last reward of episode 1: fed only when memory is kept; R̂ restarts
    last = [3.0] if keep_memory else [0.0]
    assert seen == [([0.0], [5.0]), ([1.0], [4.0]), ([2.0], [2.0]), (last, [5.0])]


def _run_batched(agent: Agent, envs: list, steps: int):
    """Drive the envs with one batched agent; record what it saw and did."""
    obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])
    rewards, starts, trace = [None] * len(envs), np.ones(len(envs), bool), []
    for _ in range(steps):
        actions = agent.act_batch(obs, rewards, starts)
        trace.append((obs.copy(), list(rewards), starts.copy(), actions.copy()))
        for i, env in enumerate(envs):
            o, r, term, trunc, _ = env.step(actions[i])
            rewards[i], starts[i] = r, term or trunc
            obs[i] = env.reset()[0] if starts[i] else o
    return trace


@pytest.mark.parametrize("backbone,include_actions,continuous", [("xlstm-1:0", False, False), ("transformer", True, True)])
def test_batched_act_equals_separate_agents(backbone, include_actions, continuous):
    model = LRAMModel(small_config(backbone, include_actions=include_actions)).eval()
    envs = [CountingEnv(length, i, continuous) for i, length in enumerate([3, 4, 5, 7])]

    def make():  # each agent gets its own copy of the model, to record its logits
        return Agent(copy.deepcopy(model), Preprocessing(target_return=8.0), OBS_SPACE, envs[0].action_space)

    batched = make()
    batched_logits = record_logits(batched.model)
    trace = _run_batched(batched, envs, steps=10)
    for i in range(len(envs)):
        single = make()
        single_logits = record_logits(single.model)
        for obs, rewards, starts, actions in trace:
            if starts[i]:
                single.reset()
            assert np.array_equal(single.act(obs[i], rewards[i]), actions[i]), f"env {i} differs"
        assert torch.allclose(torch.stack([b[i] for b in batched_logits]), torch.cat(single_logits), atol=1e-5)
    assert sum(len(e.episodes) for e in envs) > len(envs)  # episodes did end at different times


@pytest.mark.parametrize("backbone", sorted(SMALL_BACKBONES))
def test_rows_that_sit_out_a_step_keep_their_memory(backbone):
    model = LRAMModel(small_config(backbone)).eval()
    steps = random_timesteps(2, 5, seed=1)
    with torch.no_grad():
        state = model.init_state(2)
        logits = []
        for t in range(5):
            out = model(slice_steps(steps, (slice(None), slice(t, t + 1))), state)
            state = model.keep_rows(state, out.state, torch.tensor([False, True])) if t == 2 else out.state
            logits.append(out.logits)
        alone = model(slice_steps(steps, (slice(1, 2), [0, 1, 3, 4]))).logits  # row 1 without step 2
    assert torch.allclose(torch.cat(logits, 1)[1:, [3, 4]], alone[:, [2, 3]], atol=1e-5)


def test_transformer_rows_can_sit_out_while_the_window_slides():
    """At the step where the KV cache is full and slides, a row that sits out is slid too; the rows
    that step are untouched by it."""
    model = LRAMModel(small_config("transformer")).eval()  # max_positions 96 tokens: slides at step 32
    steps = random_timesteps(2, 40, seed=2)
    runs = {}
    with torch.no_grad():
        for sit_out in (False, True):
            state, logits = model.init_state(2), []
            for t in range(40):
                out = model(slice_steps(steps, (slice(None), slice(t, t + 1))), state)
                skip = sit_out and t in (31, 32, 33)
                state = model.keep_rows(state, out.state, torch.tensor([False, True])) if skip else out.state
                logits.append(out.logits)
                assert state["inputs"].shape[1] == state["0.k"].shape[2] <= 96
            runs[sit_out] = torch.cat(logits, 1)
    assert torch.equal(runs[True][0], runs[False][0])
    assert torch.isfinite(runs[True]).all() and not torch.allclose(runs[True][1, 34:], runs[False][1, 34:])


def test_inactive_envs_keep_memory_and_return_to_go(counter_backbone):
    agent = _counter_agent()
    obs = np.zeros((2, 2), np.float32)
    agent.act_batch(obs)
    agent.act_batch(obs, [1.0, 1.0], active=[True, False])
    assert agent.act_batch(obs, [1.0, 1.0]).tolist() == [2, 1]
    assert agent.memory.returns_to_go.tolist() == [-2.0, -1.0]


def test_sampled_actions_follow_the_temperature_and_the_seed():
    model = LRAMModel(small_config("transformer")).eval()
    space = gym.spaces.Discrete(18)
    obs = np.random.default_rng(0).uniform(-1, 1, (16, 2)).astype(np.float32)
    greedy = Agent(model, None, OBS_SPACE, space).act_batch(obs)
    cold = Agent(model, None, OBS_SPACE, space, deterministic=False, temperature=1e-4, seed=0).act_batch(obs)
    assert np.array_equal(greedy, cold)
    hot = [Agent(model, None, OBS_SPACE, space, deterministic=False, temperature=100.0, seed=s).act_batch(obs) for s in (1, 1, 2)]
    assert np.array_equal(hot[0], hot[1]) and not np.array_equal(hot[0], hot[2])
    assert len(set(hot[0].tolist())) > 3  # nearly uniform over 18 actions
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        Agent(model, temperature=0)


def test_memory_snapshots_can_be_given_back(counter_backbone):
    agent = _counter_agent()
    obs = np.zeros((1, 2), np.float32)
    agent.act_batch(obs)
    snapshot = agent.memory
    agent.act_batch(obs, [0.0])
    assert agent.act_batch(obs, [0.0]).tolist() == [2]
    agent.memory = snapshot
    assert agent.act_batch(obs, [0.0]).tolist() == [1]


def test_bad_inputs_are_named():
    model = LRAMModel(small_config("transformer")).eval()
    agent = Agent(model, None, OBS_SPACE, gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match=r"shape \(3,\) does not match .* \(2,\)"):
        agent.act(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="dtype <U1"):
        agent.act(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="nan"):
        agent.act(np.array([0.0, np.nan]))
    agent.act(np.zeros(2), None)  # no previous action: no reward needed
    with pytest.raises(ValueError, match="reward None for env 0"):
        agent.act(np.zeros(2), None)
    with pytest.raises(ValueError, match="reward inf for env 0 is not finite"):
        agent.act(np.zeros(2), float("inf"))
    with pytest.raises(TypeError, match="reward 'x' for env 0 is not a number"):
        agent.act(np.zeros(2), "x")
    with pytest.raises(ValueError, match="memory holds 1 envs"):
        agent.act_batch(np.zeros((2, 2)), [0.0, 0.0])
    with pytest.raises(RuntimeError, match="does not know the env's spaces"):
        Agent(model).act(np.zeros(2))


def test_image_observations_must_be_uint8():
    model = LRAMModel(small_config("transformer", image_shape=(1, 16, 16))).eval()
    agent = Agent(model, None, gym.spaces.Box(0, 255, (16, 16, 1), np.uint8), gym.spaces.Discrete(3))
    assert agent.act(np.zeros((16, 16, 1), np.uint8)) in range(3)
    with pytest.raises(TypeError, match="uint8, got torch.float32"):
        agent.act(np.zeros((16, 16, 1), np.float32), 0.0)


def test_discrete_spaces_with_an_offset_and_continuous_bounds():
    model = LRAMModel(small_config("xlstm-1:0")).eval()
    shifted = Agent(model, None, OBS_SPACE, gym.spaces.Discrete(3, start=5))
    assert shifted.act(np.zeros(2)) in (5, 6, 7)
    box = gym.spaces.Box(np.array([-3.0, 10.0], np.float32), np.array([3.0, 20.0], np.float32))
    action = Agent(model, None, OBS_SPACE, box).act(np.zeros(2))
    assert action.shape == (2,) and action.dtype == np.float32 and box.contains(action)


def test_cloned_memory_of_an_in_place_kv_cache_can_be_given_back():
    """The transformer's cache is written in place: a clone() snapshot rewinds the agent exactly."""
    model = LRAMModel(small_config("transformer")).eval()
    agent = Agent(model, None, OBS_SPACE, gym.spaces.Discrete(18))
    obs = np.random.default_rng(3).uniform(-1, 1, (5, 1, 2)).astype(np.float32)
    agent.act_batch(obs[0])
    snapshot = agent.memory.clone()
    later = [agent.act_batch(o, [0.5]) for o in obs[1:]]
    agent.memory = snapshot
    again = [agent.act_batch(o, [0.5]) for o in obs[1:]]
    assert all(np.array_equal(a, b) for a, b in zip(later, again))


def test_forgetting_reset_between_episodes_is_reported_once():
    import warnings

    env = gym.make("lram_agents/TMaze-v0", corridor_length=8)  # episodes of 10 steps
    agent = Agent(LRAMModel(small_config("xlstm-1:0")).eval(), compile=False).bind(env)
    obs, _ = env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(10):
            agent.act(obs, 0.0)
        agent.reset()  # a new episode: the count starts again
        for _ in range(10):
            agent.act(obs, 0.0)
    with pytest.warns(UserWarning, match=r"acted 11 steps since its last episode start, but the env's episodes last at most 10"):
        agent.act(obs, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agent.act(obs, 0.0)  # once only
    with pytest.raises(ValueError, match=r"starts a new episode, call agent.reset\(\) first"):
        agent.act(obs, None)  # mid-episode a reward is needed; the error says what to do at a new episode


def test_an_agent_refuses_spaces_other_than_those_it_was_trained_in():
    import lram_agents

    agent = lram_agents.load("xlstm-tmaze", compile=False)  # records T-Maze's spaces
    with pytest.raises(ValueError, match=r"trained with observation_space Box.*the env has Box\(\[-4.8.*new_spaces=True"):
        agent.bind(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="trained with observation_space"):
        lram_agents.evaluate(agent, gym.make("MountainCar-v0"), 1, progress=False)  # evaluate binds too
    agent.bind(gym.make("CartPole-v1"), new_spaces=True)  # the opt-in for transfer
    assert agent.observation_space == gym.make("CartPole-v1").observation_space


@pytest.mark.parametrize("backbone_id,layout", [("xlstm-7:1", "lram"), ("transformer", "lram"), ("mamba", "transition")])
def test_memory_saved_mid_episode_resumes_in_a_new_agent(tmp_path, backbone_id, layout):
    """Act 4 steps, save the memory (safetensors), act 3 more; a new agent from the same weights that
    loads the memory acts those 3 steps with the same logits (recurrent state, return-to-go, a_{t-1}, s_{t-1})."""
    from lram_agents.agent import AgentMemory

    torch.manual_seed(0)
    extra = {"include_actions": True, "action_head": "regression"} if layout == "transition" else {}
    model = LRAMModel(small_config(backbone_id, token_layout=layout, **extra)).eval()
    logits = record_logits(model)
    spaces = {"observation_space": OBS_SPACE,
              "action_space": gym.spaces.Box(-1, 1, (2,), np.float32) if layout == "transition" else gym.spaces.Discrete(5)}
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (7, 2)).astype(np.float32)
    agent = Agent(model, Preprocessing(target_return=3.0), compile=False, **spaces)
    for t in range(4):
        agent.act(obs[t], None if t == 0 else 0.5)
    agent.memory.save(tmp_path / "memory.safetensors")
    logits.clear()
    first = [agent.act(obs[t], 0.25, deterministic=True) for t in range(4, 7)]
    expected = torch.cat(logits)
    resumed = Agent(copy.deepcopy(model), Preprocessing(target_return=3.0), compile=False, **spaces)
    resumed.memory = AgentMemory.load(tmp_path / "memory.safetensors", resumed.device)
    logits.clear()
    second = [resumed.act(obs[t], 0.25, deterministic=True) for t in range(4, 7)]
    assert torch.equal(torch.cat(logits), expected)
    assert np.array_equal(np.asarray(first), np.asarray(second))


def test_a_file_that_is_not_a_memory_is_refused(tmp_path):
    from safetensors.torch import save_file

    from lram_agents.agent import AgentMemory

    save_file({"x": torch.zeros(1)}, str(tmp_path / "weights.safetensors"))
    with pytest.raises(ValueError, match="not an agent memory"):
        AgentMemory.load(tmp_path / "weights.safetensors")


def test_agent_to_checks_the_device_and_moves_the_model():
    from lram_agents.devices import DeviceError

    agent = Agent(LRAMModel(small_config("mamba")), observation_space=OBS_SPACE, action_space=gym.spaces.Discrete(3), seed=1,
                  compile=False)
    agent.act(np.zeros(2, np.float32))
    assert agent.to("cpu") is agent and agent.memory is None and agent.device.type == "cpu"
    agent.act(np.zeros(2, np.float32))
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="'cuda'"):
            agent.to("cuda")
    with pytest.raises(DeviceError, match="not a torch device"):
        agent.to("gpu0")
    assert "parameters" in repr(agent) and "0.0M" not in repr(agent)


def test_continuous_decoding_is_saved_with_the_agent(tmp_path):
    import lram_agents

    spaces = {"observation_space": OBS_SPACE, "action_space": gym.spaces.Box(-1, 1, (2,), np.float32)}
    agent = Agent(LRAMModel(small_config("mamba")), continuous_decoding="mean", compile=False, **spaces)
    agent.save_pretrained(tmp_path / "a")
    loaded = lram_agents.load(tmp_path / "a", compile=False)
    assert loaded.continuous_decoding == "mean"
    obs = np.zeros(2, np.float32)
    assert np.allclose(loaded.act(obs, deterministic=True), agent.act(obs, deterministic=True))
    assert lram_agents.load(tmp_path / "a", continuous_decoding="argmax").continuous_decoding == "argmax"
    with pytest.raises(ValueError, match="continuous_decoding"):
        Agent(LRAMModel(small_config("mamba")), continuous_decoding="median")
