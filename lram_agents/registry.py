"""The model zoo: which models exist (``zoo/manifest.json``), where their files live, and fetching them.

Each manifest entry is one of

* a **preset**: an LRAM size preset (Table 6) with no trained weights yet; its config comes from
  :func:`lram_agents.presets.preset`, so the zoo never copies it. ``load(name, pretrained=False)``
  builds it with random weights; ``load(name)`` says that there are no weights.
* a **trained model**: its config (inline, so the architecture is known before any download), the
  sha256 of every file, and where the files live: ``"local"`` (a folder under ``zoo/``, for small
  models) or ``"hub"`` (a Hugging Face repository at a pinned 40-hex revision, downloaded with
  ``huggingface_hub`` into :func:`cache_dir`; ``HF_HUB_OFFLINE=1`` uses the cache only).

Every file is checked against its sha256 whenever it is loaded.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError
from lram_agents.serialization import CONFIG_FILE, WEIGHTS_FILE, CheckpointError, sha256_of

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
NAME_PATTERN = re.compile(r"^[a-z0-9]+-[a-z0-9.]+(-[a-z0-9.]+)?$")  # {backbone}-{size or task}[-{variant}]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REVISION = re.compile(r"^[0-9a-f]{40}$")
_ENTRY_KEYS = {"name", "description", "preset", "config", "files", "local", "hub"}


class UnknownModelError(ValueError):
    """No zoo model has this name."""


class WeightsUnavailableError(RuntimeError):
    """The model exists but its trained weights cannot be had (none trained yet, or not cached offline)."""


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo (see the module docstring)."""

    name: str
    description: str
    preset: dict[str, Any] | None = None  # {"backbone", "size", "variant"} of presets.preset
    config: dict[str, Any] | None = None  # a trained model's config.json, inline
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    local: str | None = None  # folder under zoo/
    hub: dict[str, str] | None = None  # {"repo_id", "revision"}

    @property
    def pretrained(self) -> bool:
        """Whether trained weights exist for this entry."""
        return bool(self.files)

    def build_config(self) -> LRAMConfig:
        """The model config: the inline one of a trained model, or the preset's."""
        if self.config is not None:
            return LRAMConfig.from_dict(self.config)
        from lram_agents.presets import preset

        return preset(self.preset["backbone"], self.preset["size"], self.preset.get("variant"))


class Zoo:
    """The models of a manifest (by default the package's ``zoo/manifest.json``)."""

    def __init__(self, manifest: str | Path | None = None):
        self.manifest = Path(manifest) if manifest is not None else default_manifest()
        self._entries: dict[str, ZooEntry] | None = None

    @property
    def entries(self) -> dict[str, ZooEntry]:
        if self._entries is None:
            self._entries = _read_manifest(self.manifest)
        return self._entries

    def names(self, pretrained_only: bool = False) -> list[str]:
        return sorted(name for name, entry in self.entries.items() if entry.pretrained or not pretrained_only)

    def entry(self, name: str) -> ZooEntry:
        if name in self.entries:
            return self.entries[name]
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}: {hint}lram_agents.list_models() lists the zoo "
            f"({len(self.entries)} models); a local checkpoint is loaded by its directory path"
        )

    def fetch(self, name: str) -> Path:
        """The directory holding ``name``'s files, each checked against its sha256."""
        entry = self.entry(name)
        if not entry.pretrained:
            raise WeightsUnavailableError(
                f"{name!r} has no trained weights yet: the zoo lists its architecture only. {self._generalist_hint(entry)}"
                f"Build it with random weights with lram_agents.load({name!r}, pretrained=False), or load a local "
                "checkpoint with lram_agents.load('path/to/directory')"
            )
        if entry.local is not None:
            paths = {f: self.manifest.parent / entry.local / f for f in entry.files}
        else:
            paths = {f: _hub_file(entry, f) for f in entry.files}
        for filename, path in paths.items():
            if not path.is_file():
                raise CheckpointError(f"{name!r}: {path} does not exist (listed in {self.manifest})")
            check_sha256(path, entry.files[filename], name)
        return paths[CONFIG_FILE].parent


    def _generalist_hint(self, entry: ZooEntry) -> str:
        """For a size preset: the trained multi-domain generalists to use instead, and the recipe that
        trains the preset (LRAM's settings, on GPUs)."""
        if entry.preset is None:
            return ""
        backbone = entry.preset.get("backbone", "")
        prefix = {"transformer": "dt"}.get(backbone, backbone)
        trained = [n for n in self.names(pretrained_only=True) if n.startswith(f"{prefix}-lram-")]
        use = f"The trained multi-domain generalist to use instead: {', '.join(map(repr, trained))}. " if trained else ""
        recipe = ("Train this size with LRAM's recipe on GPUs: torchrun ... -m lram_agents.cli train examples/lram/train_206m.yaml "
                  "(set model.preset.size and backbone). ")
        return use + recipe


def default_manifest() -> Path:
    import lram_agents.zoo

    return Path(lram_agents.zoo.__file__).parent / MANIFEST_FILE


# ---- files -----------------------------------------------------------------------------------------

def check_sha256(path: Path, expected: str, name: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise CheckpointError(
            f"{path} of {name!r} has sha256 {actual}, the manifest expects {expected}: the file is "
            "corrupted, truncated or was replaced (delete it to download it again)"
        )


def cache_dir() -> Path:
    """Where hub files are cached: ``$LRAM_AGENTS_HOME/hub`` if set, else the Hugging Face cache
    (``HF_HUB_CACHE``, ``$HF_HOME/hub``, or huggingface_hub's default)."""
    if os.environ.get("LRAM_AGENTS_HOME"):
        return Path(os.environ["LRAM_AGENTS_HOME"]).expanduser() / "hub"
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def offline() -> bool:
    """Hugging Face's offline mode, read when called (``HF_HUB_OFFLINE``)."""
    flag = os.environ.get("HF_HUB_OFFLINE")
    if flag is not None:
        return flag.strip().lower() in ("1", "true", "yes", "on")
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_file(entry: ZooEntry, filename: str) -> Path:
    """One file of a hub entry: from the cache if there, else downloaded (unless offline)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.file_download import repo_folder_name

    repo, revision, cache = entry.hub["repo_id"], entry.hub["revision"], cache_dir()
    try:
        return Path(hf_hub_download(repo, filename, revision=revision, cache_dir=cache, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    looked = cache / repo_folder_name(repo_id=repo, repo_type="model") / "snapshots" / revision / filename
    if offline():
        raise WeightsUnavailableError(
            f"{entry.name!r}: {filename} is not cached and HF_HUB_OFFLINE is set; looked for {looked} "
            f"(the cache is $LRAM_AGENTS_HOME/hub, else the Hugging Face cache). Unset HF_HUB_OFFLINE "
            f"to download it from {repo} at revision {revision}, or copy the files there"
        )
    try:
        return Path(hf_hub_download(repo, filename, revision=revision, cache_dir=cache))
    except Exception as err:  # network, authentication, missing file: all mean "not available here"
        raise WeightsUnavailableError(
            f"{entry.name!r}: could not download {filename} from {repo} at revision {revision} into {cache} "
            f"(not cached at {looked}): {err}"
        ) from err


# ---- manifest ------------------------------------------------------------------------------------
def _read_manifest(path: Path) -> dict[str, ZooEntry]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"zoo manifest {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"zoo manifest {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ConfigError(f"zoo manifest {path} must be a JSON object with a 'models' list")
    if data.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ConfigError(f"zoo manifest {path} has format_version {data['format_version']!r}; this version reads {FORMAT_VERSION}")
    entries: dict[str, ZooEntry] = {}
    for i, item in enumerate(data["models"]):
        entry = _parse_entry(item, f"{path} models[{i}]")
        if entry.name in entries:
            raise ConfigError(f"{path}: model {entry.name!r} is listed twice")
        entries[entry.name] = entry
    return entries


def _parse_entry(item: Any, where: str) -> ZooEntry:
    def fail(why: str):
        raise ConfigError(f"{where}: {why}")

    if not isinstance(item, dict):
        fail(f"expected a JSON object, got {item!r}")
    unknown = sorted(set(item) - _ENTRY_KEYS)
    if unknown:
        fail(f"unknown field(s) {unknown}; known: {sorted(_ENTRY_KEYS)}")
    name = item.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        fail(f"name {name!r} must look like {{backbone}}-{{size or task}}[-{{variant}}] (lower case)")
    entry = ZooEntry(
        name=name,
        description=str(item.get("description", "")),
        preset=item.get("preset"),
        config=item.get("config"),
        files=dict(item.get("files") or {}),
        local=item.get("local"),
        hub=item.get("hub"),
    )
    problem = _entry_problem(entry)
    if problem:
        fail(f"model {name!r}: {problem}")
    return entry


def _entry_problem(entry: ZooEntry) -> str | None:
    if (entry.preset is None) == (entry.config is None):
        return "give exactly one of 'preset' (architecture only) and 'config' (a trained model)"
    if entry.preset is not None:
        if entry.files or entry.local or entry.hub:
            return "a preset entry has no files; a trained model gives 'config', 'files' and 'local' or 'hub'"
        if not isinstance(entry.preset, dict) or not {"backbone", "size"} <= set(entry.preset):
            return f"'preset' = {entry.preset!r} must be an object with 'backbone', 'size' (and optional 'variant')"
        return None
    missing = {CONFIG_FILE, WEIGHTS_FILE} - set(entry.files)
    if missing:
        return f"'files' must list {sorted(missing)} with their sha256"
    bad = [f for f, digest in entry.files.items() if not isinstance(digest, str) or not _SHA256.match(digest)]
    if bad:
        return f"'files' {bad} need a sha256 of 64 lower-case hex digits"
    if (entry.local is None) == (entry.hub is None):
        return "give exactly one of 'local' (a folder under zoo/) and 'hub' ({repo_id, revision})"
    if entry.hub is not None:
        revision = entry.hub.get("revision") if isinstance(entry.hub, dict) else None
        if not isinstance(entry.hub, dict) or not entry.hub.get("repo_id") or not _REVISION.match(str(revision)):
            return f"'hub' = {entry.hub!r} needs a repo_id and a pinned 40-hex revision (a commit, not a branch)"
    return None


def add_to_manifest(zoo: str | Path, entry: dict[str, Any]) -> None:
    """Put ``entry`` (from :func:`manifest_entry`) into ``zoo/manifest.json``: it replaces the entry of the same
    name where that one stands, or is appended; the other entries stay as they are."""
    from lram_agents.serialization import atomic_write_text

    path = Path(zoo) / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    names = [m["name"] for m in manifest["models"]]
    if entry["name"] in names:  # in place: a re-shipped model keeps its position in the file
        manifest["models"][names.index(entry["name"])] = entry
    else:
        manifest["models"].append(entry)
    atomic_write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def manifest_entry(directory: str | Path, name: str, description: str, *, local: str | None = None,
                   hub: dict[str, str] | None = None) -> dict[str, Any]:
    """The manifest entry of a directory written by ``Agent.save_pretrained``: config and sha256 of every file."""
    directory = Path(directory)
    files = {p.name: sha256_of(p) for p in sorted(directory.iterdir()) if p.is_file() and not p.name.startswith(".")}
    config = json.loads((directory / CONFIG_FILE).read_text())
    item = {"name": name, "description": description, "config": config, "files": files}
    item.update({"local": local} if local is not None else {"hub": hub})
    _parse_entry(item, f"manifest entry for {directory}")  # validate before anyone writes it
    return item
