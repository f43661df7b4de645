"""ViZDoom-Two-Colors: the generated scenario, the environment's rules and the reference policies.

The scenario tests need no ViZDoom; the rest skip when the ``vizdoom`` extra is not installed.
"""

import struct
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.envs.vizdoom_two_colors import (
    COLORS,
    ENV_ID,
    MAX_EPISODE_STEPS,
    RandomPolicy,
    ScenarioConfig,
    ScriptedMemoryPolicy,
    build_scenario,
    detect_pillar_color,
    other_color,
)
from lram_agents.envs.vizdoom_two_colors.scenario import pack_wad, scenario_lumps, textmap

STEP_TICS = 2  # frame skip
LIVING = 0.01 * STEP_TICS  # living reward of one agent step


def _read_wad(path):
    data = path.read_bytes()
    kind, count, table = struct.unpack_from("<4sii", data, 0)
    lumps = {}
    for i in range(count):
        offset, size, name = struct.unpack_from("<ii8s", data, table + 16 * i)
        lumps.setdefault(name.rstrip(b"\0").decode(), []).append(data[offset:offset + size])
    return kind, lumps


# ---- the scenario (no ViZDoom needed) ------------------------------------------------------

def test_scenario_wad_holds_both_maps_actors_and_art(tmp_path):
    path = build_scenario(ScenarioConfig(), tmp_path)
    kind, lumps = _read_wad(path)
    assert kind == b"PWAD"
    assert {"MAP01", "MAP02", "DECORATE", "MAPINFO", "PLRDA0", "PLGRA0", "ITRDA0", "ITGRA0", "TCACID"} <= set(lumps)
    assert len(lumps["TEXTMAP"]) == 2 and len(lumps["ENDMAP"]) == 2
    assert all(blob.startswith(b"\x89PNG") for blob in lumps["PLRDA0"] + lumps["TCWALL"])
    decorate = lumps["DECORATE"][0].decode()
    assert "$" not in decorate  # every placeholder was substituted
    assert "PLRD A 44" in decorate  # 1 + 44 = 45 tics of pillar


def test_textmap_places_the_pillar_of_its_colour_and_the_acid():
    config = ScenarioConfig(acid_damage=5, acid_interval=32)
    red, green = textmap("red", config), textmap("green", config)
    assert "type = 30101" in red and "type = 30102" not in red
    assert "type = 30102" in green and "type = 30101" not in green
    assert "damageamount = 5; damageinterval = 32;" in red
    with pytest.raises(ValueError, match="'blue'"):
        textmap("blue", config)


def test_build_is_cached_by_content_and_leaves_no_temporary_files(tmp_path):
    first = build_scenario(ScenarioConfig(), tmp_path)
    mtime = first.stat().st_mtime_ns
    assert build_scenario(ScenarioConfig(), tmp_path) == first
    assert first.stat().st_mtime_ns == mtime  # reused, not rewritten
    other = build_scenario(ScenarioConfig(acid_damage=5), tmp_path)
    assert other != first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])


def test_cache_directory_follows_lram_agents_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LRAM_AGENTS_HOME", str(tmp_path))
    assert build_scenario().parent == tmp_path / "vizdoom"


def test_scenario_config_and_wad_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="acid_interval must be >= 1, got 0"):
        ScenarioConfig(acid_interval=0)
    with pytest.raises(TypeError, match="pillar_tics must be an int, got 4.5"):
        ScenarioConfig(pillar_tics=4.5)
    with pytest.raises(ValueError, match="'TOOLONGNAME'"):
        pack_wad([("TOOLONGNAME", b"")])
    assert [name for name, _ in scenario_lumps(ScenarioConfig())][:2] == ["MAPINFO", "DECORATE"]


def test_package_imports_without_vizdoom():
    code = textwrap.dedent("""
        import sys
        sys.modules["vizdoom"] = None  # makes `import vizdoom` fail
        import gymnasium as gym
        import lram_agents
        from lram_agents.envs.vizdoom_two_colors import ViZDoomTwoColorsEnv
        assert "lram_agents/ViZDoomTwoColors-v0" in gym.registry
        try:
            ViZDoomTwoColorsEnv()
        except ImportError as error:
            assert "lram_agents[vizdoom]" in str(error), error
        else:
            raise AssertionError("expected ImportError")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---- the environment (needs ViZDoom) -------------------------------------------------------

@pytest.fixture(scope="module")
def vizdoom_home(tmp_path_factory):
    """Skip without ViZDoom; build the scenario into a temporary cache, not the user's."""
    pytest.importorskip("vizdoom", reason="the 'vizdoom' extra is not installed (pip install 'lram_agents[vizdoom]')")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LRAM_AGENTS_HOME", str(tmp_path_factory.mktemp("lram_home")))
        yield


def _make(**kwargs):
    import vizdoom

    try:
        return gym.make(ENV_ID, **kwargs)
    except (vizdoom.ViZDoomErrorException, vizdoom.ViZDoomUnexpectedExitException) as error:
        pytest.skip(f"ViZDoom cannot start here: {error}")  # pragma: no cover - depends on the machine


@pytest.fixture(scope="module")
def env(vizdoom_home):
    env = _make()
    yield env
    env.close()


def test_check_env_passes(env):
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped)


def test_spaces_and_time_limit(env):
    assert env.observation_space == gym.spaces.Box(0, 255, (3, 64, 112), np.uint8)
    assert env.action_space == gym.spaces.Discrete(5)
    assert env.spec.max_episode_steps == MAX_EPISODE_STEPS == 4200


def test_same_seed_same_episode_other_seed_other_layout(env):
    def rollout(seed):
        obs, info = env.reset(seed=seed)
        frames, rewards = [obs], []
        for action in [2, 2, 3, 4, 0, 1, 2] * 4:
            obs, reward, *_ = env.step(action)
            frames.append(obs)
            rewards.append(reward)
        return np.stack(frames), rewards, info["pillar_color"], env.unwrapped.scene().item_xy

    frames_a, rewards_a, color_a, items_a = rollout(7)
    frames_b, rewards_b, color_b, items_b = rollout(7)
    assert np.array_equal(frames_a, frames_b) and rewards_a == rewards_b and color_a == color_b
    *_, items_c = rollout(8)
    assert items_c.shape != items_a.shape or not np.allclose(items_c, items_a)


def test_pillar_colour_is_sampled_and_can_be_fixed(env):
    seen = {env.reset(seed=seed)[1]["pillar_color"] for seed in range(12)}
    assert seen == set(COLORS)
    for color in COLORS:
        assert env.reset(seed=0, options={"task": color})[1]["pillar_color"] == color
    with pytest.raises(ValueError, match="'blue'"):
        env.reset(options={"task": "blue"})


def test_first_frame_shows_the_pillar(env):
    for seed in range(4):
        for color in COLORS:
            obs, info = env.reset(seed=seed, options={"task": color})
            assert detect_pillar_color(obs) == color == info["pillar_color"]


def test_pillar_is_gone_after_45_tics(env):
    env.reset(seed=0)
    scene = env.unwrapped.scene()
    assert scene.pillar and env.unwrapped.scene().x == -256.0  # start midway pillar <-> wall
    tics = 1
    while tics < 43:
        *_, info = env.step(0)
        tics = info["tics"]
    assert tics == 43 and env.unwrapped.scene().pillar
    *_, info = env.step(0)
    assert info["tics"] == 45 and not env.unwrapped.scene().pillar


def test_acid_drains_8_hp_every_32_tics_and_death_terminates(env):
    _, info = env.reset(seed=0)
    assert info["tics"] == 1 and info["health"] == 92.0  # first drain at tic 0
    healths, rewards = {}, []
    while True:  # turn in place: no item is ever touched
        _, reward, terminated, truncated, info = env.step(0)
        healths[info["tics"]] = info["health"]
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert healths[31] == 92.0 and healths[33] == 84.0 and healths[65] == 76.0
    assert info["health"] <= 0 and info["tics"] == 385  # 13 drains of 8 HP
    assert rewards[:-1] == [pytest.approx(LIVING)] * (len(rewards) - 1)


def test_paper_acid_rate_is_a_constructor_argument(vizdoom_home):
    env = _make(acid_damage=5)
    try:
        _, info = env.reset(seed=0)
        assert info["health"] == 95.0
    finally:
        env.close()


def _play_until(env, policy, seed, color, key):
    """Play ``policy`` told ``color`` until ``info[key]`` grows; return the step's numbers."""
    obs, info = env.reset(seed=seed)
    policy.reset(obs, info, color=color)
    for _ in range(500):
        before = info
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        if info[key] > before[key]:
            return before, reward, info
        assert not (terminated or truncated)
    raise AssertionError(f"no {key} within 500 steps")


def test_item_of_pillar_colour_heals_25_and_pays_1(env):
    policy = ScriptedMemoryPolicy(env)
    for seed in range(3):
        _, info = env.reset(seed=seed)
        before, reward, after = _play_until(env, policy, seed, info["pillar_color"], "good_items")
        picked = after["good_items"] - before["good_items"]  # items may overlap: 1 or more
        assert reward == pytest.approx(picked + LIVING)
        assert after["bad_items"] == before["bad_items"]
        expected = min(before["health"] + 25.0 * picked, 100.0)  # minus 8 if the acid struck
        assert after["health"] in (expected, expected - 8.0)


def test_item_of_other_colour_hurts_25_and_pays_nothing(env):
    policy = ScriptedMemoryPolicy(env)
    for seed in range(3):
        _, info = env.reset(seed=seed)
        before, reward, after = _play_until(env, policy, seed, other_color(info["pillar_color"]), "bad_items")
        picked = after["bad_items"] - before["bad_items"]
        assert reward == pytest.approx(LIVING)
        assert after["good_items"] == before["good_items"]
        expected = before["health"] - 25.0 * picked  # minus 8 if the acid struck
        assert after["health"] in (expected, expected - 8.0)


def test_no_message_on_screen_when_a_bad_item_is_picked_up(vizdoom_home):
    """A bad item counts as a ZDoom "secret": without ``+cl_showsecretmessage 0`` (and a fresh .ini, as this module's
    cache has) "A secret is revealed!" appears in yellow on screen (~260 such pixels a step after the pickup), telling
    the agent the item was wrong."""
    env = _make(render_mode="rgb_array")
    try:
        policy = ScriptedMemoryPolicy(env)
        obs, info = env.reset(seed=3)
        policy.reset(obs, info, color=other_color(info["pillar_color"]))
        while info["bad_items"] == 0:
            obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
            assert not (terminated or truncated)
        env.step(0)
        frame = env.render().astype(int)
        yellow = (frame[..., 0] > 180) & (frame[..., 1] > 120) & (frame[..., 2] < 90)  # items are red or green
        assert yellow.sum() == 0
    finally:
        env.close()


def test_render_returns_the_full_frame(vizdoom_home):
    env = _make(render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (144, 256, 3) and frame.dtype == np.uint8
        assert env.metadata["render_fps"] == 17.5  # 35 tics/s, 2 tics per step
        # The observation is the frame box-filtered to 64x112: means agree closely.
        assert abs(frame.mean() - obs.mean()) < 1.0
    finally:
        env.close()


def test_bad_arguments_are_named(env):
    with pytest.raises(ValueError, match="'purple'"):
        gym.make(ENV_ID, pillar_color="purple")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="got 7"):
        env.unwrapped.step(7)


def test_memory_matters_scripted_policy_outlives_random_and_forgetful(env):
    """Right colour survives 600 steps on every seed; wrong colour and random die well before."""
    lifetimes = {"right": [], "wrong": [], "random": []}
    for seed in range(3):
        for kind in lifetimes:
            policy = RandomPolicy(seed=seed) if kind == "random" else ScriptedMemoryPolicy(env)
            obs, info = env.reset(seed=seed)
            color = info["pillar_color"] if kind == "right" else other_color(info["pillar_color"])
            if kind == "random":
                policy.reset(obs, info)
            else:
                policy.reset(obs, info, color=color)
            steps = 0
            while steps < 600:
                obs, _, terminated, _, info = env.step(policy.act(obs, info))
                steps += 1
                if terminated:
                    break
            lifetimes[kind].append(steps)
    assert lifetimes["right"] == [600, 600, 600], lifetimes
    assert max(lifetimes["wrong"]) < 200 and max(lifetimes["random"]) < 400, lifetimes
