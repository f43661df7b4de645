"""DroQ (Hiraoka et al. 2022, "Dropout Q-Functions for Doubly Efficient Reinforcement Learning") on SB3's SAC.

DroQ is SAC with two changes: each Q-network's hidden layer is ``Linear -> Dropout -> LayerNorm -> ReLU``
(a cheap stand-in for REDQ's large critic ensemble), and the critics take many gradient steps per
environment step (the paper's update-to-data ratio G = 20). The Mamba-AD paper records Ant-Dir's
learning histories with it; neither SB3 nor sb3-contrib ships it, so it lives here as a thin subclass:

    from lram_agents.envs.droq import DroQ
    model = DroQ("MlpPolicy", env, gradient_steps=20, policy_kwargs={"dropout_rate": 0.01})

Differences from the paper, kept small on purpose: the actor is updated at every critic step, as SB3's
SAC does (the paper updates it once per environment step), and the target critic keeps dropout on,
as the paper's ``Q_dr`` targets do (SB3 would switch the target's dropout off).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from stable_baselines3 import SAC
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

#: the paper's update-to-data ratio (critic gradient steps per environment step)
DEFAULT_GRADIENT_STEPS = 20
#: the paper's dropout rate for its MuJoCo tasks
DEFAULT_DROPOUT_RATE = 0.01


class _FeatureDropout(nn.Dropout):
    """``nn.Dropout`` built as SB3's ``create_mlp`` builds its post-linear modules: from the feature count."""

    def __init__(self, features: int, p: float):
        super().__init__(p=p)


class DroQCritic(ContinuousCritic):
    """SAC's twin Q-networks with dropout and layer normalisation after every hidden linear layer."""

    def __init__(self, *args: Any, dropout_rate: float = DEFAULT_DROPOUT_RATE, **kwargs: Any):
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
        super().__init__(*args, **kwargs)
        self.dropout_rate = dropout_rate
        net_arch, features_dim = kwargs["net_arch"], kwargs["features_dim"]
        activation_fn = kwargs.get("activation_fn", nn.ReLU)
        inputs = features_dim + get_action_dim(self.action_space)
        post_linear = [partial(_FeatureDropout, p=dropout_rate), nn.LayerNorm]
        self.q_networks = []
        for index in range(self.n_critics):  # replaces SAC's plain networks under the same names
            q_net = nn.Sequential(*create_mlp(inputs, 1, net_arch, activation_fn, post_linear_modules=post_linear))
            self.add_module(f"qf{index}", q_net)
            self.q_networks.append(q_net)


class DroQPolicy(SACPolicy):
    """SAC's policy with :class:`DroQCritic` critics (``policy_kwargs={"dropout_rate": p}``)."""

    def __init__(self, *args: Any, dropout_rate: float = DEFAULT_DROPOUT_RATE, **kwargs: Any):
        self.dropout_rate = dropout_rate  # read by make_critic, which SACPolicy.__init__ calls
        super().__init__(*args, **kwargs)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> DroQCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return DroQCritic(**critic_kwargs, dropout_rate=self.dropout_rate).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "dropout_rate": self.dropout_rate}


class DroQ(SAC):
    """SAC with :class:`DroQPolicy` and ``gradient_steps`` = 20 critic (and actor) updates per environment step."""

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": DroQPolicy}

    def __init__(self, policy: str | type[DroQPolicy], env: Any, gradient_steps: int = DEFAULT_GRADIENT_STEPS,
                 **kwargs: Any):
        super().__init__(policy, env, gradient_steps=gradient_steps, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.critic_target.train(True)  # dropout in the targets too (the paper's Q_dr); SB3 never toggles it back
