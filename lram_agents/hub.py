"""Sharing agents through the Hugging Face Hub.

    agent.push_to_hub("me/cartpole-xlstm")                  # save_pretrained's files, as one commit
    agent = lram_agents.load("hf://me/cartpole-xlstm")      # or "hf://me/cartpole-xlstm@<revision>"

A repository holds what :meth:`Agent.save_pretrained <lram_agents.agent.Agent.save_pretrained>` writes
(``config.json``, ``model.safetensors``, ``preprocessing.json``, the card ``README.md``); no pickle. Downloads
go to the library's hub cache (:func:`lram_agents.registry.cache_dir`) and honour ``HF_HUB_OFFLINE``;
authentication is huggingface_hub's (``HF_TOKEN`` or ``huggingface-cli login``), or ``token=``.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from lram_agents.registry import WeightsUnavailableError, cache_dir, offline

if TYPE_CHECKING:
    from lram_agents.agent import Agent

PREFIX = "hf://"
#: The files of a saved agent (anything else in a repository is not downloaded).
AGENT_FILES = ["config.json", "model.safetensors", "preprocessing.json", "README.md"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def is_hub_reference(name: Any) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def parse_reference(reference: str) -> tuple[str, str | None]:
    """``"hf://owner/repo@revision"`` -> ``("owner/repo", "revision")`` (revision ``None`` when absent)."""
    repo_id, _, revision = reference[len(PREFIX):].partition("@")
    check_repo_id(repo_id)
    return repo_id, revision or None


def check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.match(repo_id):
        raise ValueError(f"hub repository {repo_id!r} must look like 'owner/name'")


def download(reference: str) -> Path:
    """The local directory of a hub agent (from the cache, or downloaded unless offline)."""
    from huggingface_hub import snapshot_download

    repo_id, revision = parse_reference(reference)
    try:
        path = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir(), allow_patterns=AGENT_FILES,
                                 local_files_only=offline())
    except Exception as err:  # network, authentication, unknown repository: all mean "not available here"
        hint = " (HF_HUB_OFFLINE is set and it is not cached)" if offline() else ""
        raise WeightsUnavailableError(f"could not get {reference} from the Hugging Face Hub{hint}: {err}") from err
    return Path(path)


def push(agent: Agent, repo_id: str, *, private: bool = False, token: str | None = None, commit_message: str | None = None,
         results: Mapping[str, Any] | None = None, revision: str | None = None) -> str:
    """Upload ``agent`` as the files of ``save_pretrained`` to ``repo_id`` (created if needed); returns the commit's URL."""
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as folder:
        agent.save_pretrained(folder, name=PREFIX + repo_id, results=results)  # the card says load("hf://owner/name")
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision,
                                   commit_message=commit_message or f"Upload {repo_id.split('/')[1]} (lram_agents)")
    return str(getattr(commit, "commit_url", commit))
