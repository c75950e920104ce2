"""Push a model folder to the Hugging Face Hub: `huggingface_hub.create_repo` + `upload_folder`.

What goes up is an allow-list, so a training folder's checkpoints, optimizer states, TensorBoard runs and pickled
`training_args.bin` never leave the machine: the weights (safetensors only), config.json (with `auto_map`), the code
files that `auto_map` names, the tokenizer files, generation_config.json, and the rendered card with its images.
`upload_plan` lists exactly what `upload_folder` will send (the same patterns through huggingface_hub's own
`filter_repo_objects`), and `check_loads` proves in a fresh Python process, where hfscratch cannot be imported,
that those files alone load with `AutoModelForCausalLM` and `AutoTokenizer`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError
from hfscratch.hub.card import CARD_FILE, FUNNEL, LOSS_CURVE, SCORES_PLOT, write_card
from hfscratch.hub.facts import llama_export
from hfscratch.hub.lineage import gather_lineage, read_json
from hfscratch.models.loading import check_model_folder as check_loadable_folder

WEIGHTS = ["model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json"]
CONFIGS = ["config.json", "generation_config.json"]
TOKENIZER = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
]
CARD = [CARD_FILE, LOSS_CURVE, FUNNEL, SCORES_PLOT]
# Never uploaded, even if an allow pattern matched them: training state and anything pickled.
IGNORE = [
    "checkpoint-*/*",
    "runs/*",
    "evaluation/*",
    "*.bin",
    "*.pt",
    "*.pth",
    "optimizer*",
    "scheduler*",
    "rng_state*",
]
LOGIN_HINT = "run `hf auth login` or set HF_TOKEN to a token with write access (https://huggingface.co/settings/tokens)"

REPORT_PREFIX = "hfscratch-load-check: "
# Runs in a fresh interpreter: hfscratch made unimportable, offline, with its own module cache for remote code.
LOAD_CHECK = r"""
import json, sys
sys.modules["hfscratch"] = None  # the folder must load without the kit that trained it
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder, remote_code, REPORT = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote_code)
model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=remote_code).eval()
batch = tokenizer("The Python standard library", return_tensors="pt")
inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
with torch.no_grad():
    logits = model(**inputs).logits
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
print(REPORT + json.dumps({
    "model_class": type(model).__name__,
    "module": type(model).__module__,
    "parameters": model.num_parameters(),
    "tokenizer_class": type(tokenizer).__name__,
    "vocab_size": len(tokenizer),
    "logits_shape": list(logits.shape),
    "logits_finite": bool(torch.isfinite(logits).all()),
    "new_tokens": generated.shape[1] - inputs["input_ids"].shape[1],
    "hfscratch_imported": sys.modules.get("hfscratch") is not None,
}))
"""


@dataclass(frozen=True)
class UploadFile:
    path: str  # relative to the uploaded folder, as it will be in the repo
    size: int


# -- Checks --------------------------------------------------------------------------------------------------


def check_repo_id(repo_id: str | None) -> str:
    """`repo_id` if it is a Hub model id ORG/NAME; a one-line RecipeError otherwise."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not repo_id:
        raise RecipeError("--repo_id is required: the Hub repository to push to, as ORG/NAME (e.g. my-org/tiny-llm)")
    if repo_id.count("/") != 1:
        raise RecipeError(f"--repo_id {repo_id!r}: expected ORG/NAME (a namespace, one slash, a name)")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise RecipeError(f"--repo_id {repo_id!r} is not a valid Hub id: {exc}") from None
    return repo_id


def code_files(config: dict[str, Any]) -> list[str]:
    """The Python files `auto_map` refers to ("modeling_hfscratch.HFScratchForCausalLM" -> modeling_hfscratch.py)."""
    refs = config.get("auto_map", {}).values()
    return sorted({ref.split("--")[-1].rsplit(".", 1)[0] + ".py" for ref in refs if isinstance(ref, str)})


def check_model_folder(model_dir: Path) -> dict[str, Any]:
    """The folder's config if it holds a complete model: `hfscratch.models.loading`'s checks (config, causal LM,
    readable safetensors weights, tokenizer), and the code files its auto_map names."""
    config = check_loadable_folder(model_dir)
    if config.get("model_type") == "hfscratch" and not config.get("auto_map"):
        raise RecipeError(f"{model_dir}/config.json has no auto_map: save the model with hfscratch's save_pretrained")
    missing_code = [name for name in code_files(config) if not (model_dir / name).is_file()]
    if missing_code:
        raise RecipeError(f"{model_dir}: config.json's auto_map names {', '.join(missing_code)}, which is missing")
    return config


def hub_token(token: str | None = None) -> str:
    """The token to push with: given, else huggingface_hub's usual places (HF_TOKEN, the `hf auth login` file)."""
    from huggingface_hub import constants, get_token

    if constants.HF_HUB_OFFLINE:
        raise RecipeError("HF_HUB_OFFLINE is set: unset it to push (or use --dry_run, which needs no network)")
    token = token or get_token()
    if not token:
        raise RecipeError(f"no Hugging Face token found: {LOGIN_HINT}")
    return token


# -- What goes up --------------------------------------------------------------------------------------------


def allow_patterns(config: dict[str, Any]) -> list[str]:
    return WEIGHTS + CONFIGS + code_files(config) + TOKENIZER + CARD


def upload_plan(folder: Path, config: dict[str, Any]) -> list[UploadFile]:
    """Exactly the files `upload_folder(folder, allow_patterns=..., ignore_patterns=IGNORE)` sends, with sizes."""
    from huggingface_hub.utils import filter_repo_objects

    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    chosen = filter_repo_objects(paths, allow_patterns=allow_patterns(config), ignore_patterns=IGNORE)
    return [UploadFile(path, (folder / path).stat().st_size) for path in chosen]


def human_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def format_plan(files: list[UploadFile]) -> str:
    width = max(len(f.path) for f in files)
    lines = [f"  {f.path:<{width}}  {human_size(f.size):>9}" for f in files]
    lines.append(f"  {len(files)} files, {human_size(sum(f.size for f in files))}")
    return "\n".join(lines)


def check_loads(folder: Path, files: list[UploadFile], remote_code: bool = True, timeout: float = 3600) -> dict:
    """Load the files that would be uploaded, and only those, in a fresh interpreter where hfscratch is not
    importable; returns what loaded (class, parameters, tokenizer, logits shape) or raises RecipeError."""
    with tempfile.TemporaryDirectory(prefix="hfscratch-load-check-") as tmp:
        staged = Path(tmp, "repo")
        for f in files:  # symlinks: a 7B model's weights are not copied for the check
            (staged / f.path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink((folder / f.path).resolve(), staged / f.path)
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_MODULES_CACHE": str(Path(tmp, "modules")),  # remote code copied afresh, not from an earlier run
            "PYTHONNOUSERSITE": "1",
        }
        env.pop("PYTHONPATH", None)
        result = subprocess.run(
            [sys.executable, "-c", LOAD_CHECK, str(staged), "1" if remote_code else "0", REPORT_PREFIX],
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RecipeError(f"load check failed: the uploaded files do not load in a fresh process: {last}")
    lines = [line for line in result.stdout.splitlines() if line.startswith(REPORT_PREFIX)]
    if not lines:
        raise RecipeError(f"load check failed: the fresh process printed no report (stderr: {result.stderr[-300:]!r})")
    report = json.loads(lines[-1].removeprefix(REPORT_PREFIX))
    if not report["logits_finite"]:
        raise RecipeError("load check failed: the model loads but its logits are not finite")
    return report


# -- Llama export --------------------------------------------------------------------------------------------


def export_llama(model_dir: Path, out: Path) -> None:
    """`hfscratch.models.convert.to_llama` of the folder's model, saved with its tokenizer and generation config."""
    from hfscratch.models.convert import to_llama
    from hfscratch.models.hfscratch import HFScratchForCausalLM

    model = HFScratchForCausalLM.from_pretrained(model_dir)
    try:
        llama = to_llama(model)
    except ValueError as exc:
        raise RecipeError(f"--llama: {exc}") from None
    llama.save_pretrained(out)  # safetensors, no auto_map: a stock LlamaForCausalLM
    for name in TOKENIZER + ["generation_config.json"]:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out / name)


# -- Push ----------------------------------------------------------------------------------------------------


@dataclass
class PushResult:
    folder: Path  # what was (or would be) uploaded
    files: list[UploadFile]
    load_check: dict | None = None
    commit_url: str | None = None
    commit_oid: str | None = None
    repo_url: str | None = None


def push(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    llama: bool = False,
    data_dir: str | Path | None = None,
    evaluation_dir: str | Path | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
    load_check: bool = True,
    log: Any = print,
    **card_options: Any,
) -> PushResult:
    """Render the card into the folder, check, and (unless `dry_run`) upload to `repo_id` as one commit.

    A dry run renders the card into a temporary staged copy and leaves the model folder as it was."""
    model_dir = Path(model_dir)
    check_repo_id(repo_id)
    config = check_model_folder(model_dir)
    if llama:
        ok, why = llama_export(config)
        if not ok:
            raise RecipeError(f"--llama: this model cannot be exported to Llama: {why}")
    if not dry_run:
        token = hub_token(token)  # before any work: a missing token is the most common failure
    lineage = gather_lineage(model_dir, data_dir, evaluation_dir)
    for line in lineage.missing:
        log(f"note: {line}")
    with tempfile.TemporaryDirectory(prefix="hfscratch-push-") as tmp:
        if llama:
            log("exporting to LlamaForCausalLM ...")
            folder = Path(tmp, "llama")
            export_llama(model_dir, folder)
            config = read_json(folder / "config.json") or {}
        elif dry_run:
            # A dry run changes nothing in the model folder: the card is rendered into a staged copy (links).
            folder = stage(model_dir, config, Path(tmp, "staged"))
        else:
            folder = model_dir
        readme = write_card(lineage, card_dir=folder, repo_id=repo_id, llama=llama, **card_options)
        log(f"model card: {readme}" + (" (rendered for the dry run; the model folder is unchanged)" if dry_run else ""))
        files = upload_plan(folder, config)
        result = PushResult(folder=folder, files=files)  # for --llama and --dry_run, temporary (gone after the push)
        log(
            f"{'would upload' if dry_run else 'uploading'} to {repo_id}"
            + (f" (revision {revision})" if revision else "")
        )
        log(format_plan(files))
        if load_check:
            result.load_check = report = check_loads(folder, files, remote_code=not llama)
            log(
                f"load check (fresh process, hfscratch not importable): {report['model_class']} with "
                f"{report['parameters']:,} parameters, {report['tokenizer_class']} with {report['vocab_size']:,} "
                f"tokens, logits {report['logits_shape']}: ok"
            )
        if dry_run:
            return result
        upload(result, folder, config, repo_id, private, revision, token, endpoint, commit_message, log)
    return result


def stage(model_dir: Path, config: dict[str, Any], staged: Path) -> Path:
    """A folder of symbolic links to the files of `model_dir` that would be uploaded, the card's own left out
    (the dry run renders those afresh): what `upload_folder` would see, at no copying cost."""
    for f in upload_plan(model_dir, config):
        if f.path in CARD:
            continue
        (staged / f.path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink((model_dir / f.path).resolve(), staged / f.path)
    return staged


def upload(
    result: PushResult,
    folder: Path,
    config: dict[str, Any],
    repo_id: str,
    private: bool,
    revision: str | None,
    token: str,
    endpoint: str | None,
    commit_message: str | None,
    log: Any,
) -> None:
    import httpx
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=token)
    try:
        repo_url = api.create_repo(repo_id, private=True if private else None, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            folder_path=folder,
            repo_id=repo_id,
            revision=revision,
            allow_patterns=allow_patterns(config),
            ignore_patterns=IGNORE,
            commit_message=commit_message or f"Upload {config.get('model_type', 'model')} model with hfscratch push",
        )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        hint = f": {LOGIN_HINT}" if status in (401, 403) else ""
        message = " ".join(str(exc).split())
        raise RecipeError(f"the Hub refused the push to {repo_id} (HTTP {status}): {message}{hint}") from None
    except httpx.TransportError as exc:
        raise RecipeError(f"cannot reach the Hub at {api.endpoint}: {exc}") from None
    result.repo_url, result.commit_url, result.commit_oid = str(repo_url), commit.commit_url, commit.oid
    log(f"pushed {len(result.files)} files to {repo_url} in commit {commit.oid}: {commit.commit_url}")
