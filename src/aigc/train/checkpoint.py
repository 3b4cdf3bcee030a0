"""Checkpoints: safetensors for tensors, JSON for the rest, written atomically, verified on load."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..errors import CheckpointError
from ..files import WRITE_ERRORS, write_reason
from ..tensorfile import read_tensors

COMPLETE = "COMPLETE"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def optimizer_tensors(opts: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer states as flat tensors (for safetensors) and param groups (for JSON)."""
    tensors, groups = {}, {}
    for name, opt in opts.items():
        sd = opt.state_dict()
        for pid, state in sd["state"].items():
            for key, value in state.items():
                t = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"{name}/{pid}/{key}"] = t.detach().cpu().clone().contiguous()
        groups[name] = sd["param_groups"]
    return tensors, groups


def restore_optimizers(opts: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor],
                       groups: dict[str, Any]) -> None:
    for name, opt in opts.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            owner, pid, field = key.split("/", 2)
            if owner == name:
                state.setdefault(int(pid), {})[field] = value
        opt.load_state_dict({"state": state, "param_groups": groups[name]})
        for p, st in opt.state.items():  # saved contiguous; give each moment its parameter's layout (NHWC convs)
            for key, value in st.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    st[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, opts: dict[str, torch.optim.Optimizer],
                    state: dict[str, Any], keep_last: int = 3) -> Path:
    """Write checkpoints/step-N under a temporary name, COMPLETE last, then rename into place."""
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        # CPU copies (a no-op for CPU tensors): a run trained on a GPU samples and resumes anywhere
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise CheckpointError(f"refusing to save non-finite weights ({bad[0]})", "training diverged")
        save_file(_unshare(weights), str(tmp / "model.safetensors"))
        opt_t, groups = optimizer_tensors(opts)
        opt_t["rng/torch"] = torch.get_rng_state()
        save_file(opt_t, str(tmp / "optim.safetensors"))
        files = {f: _sha256(tmp / f) for f in ("model.safetensors", "optim.safetensors")}
        _fsync_write(tmp / "state.json", json.dumps({**state, "step": step, "param_groups": groups,
                                                      "sha256": files}, indent=1))
        _fsync_write(tmp / COMPLETE, f"state.json sha256 {_sha256(tmp / 'state.json')}\n")  # covers state.json
        old = root / f".old-step-{step:08d}-{os.getpid()}"
        if final.exists():  # moved aside, not deleted, until the new one is in place
            os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except WRITE_ERRORS as e:  # safetensors raises its own error on a full disk, not OSError
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"could not write checkpoint {final}: {write_reason(e)}",
                              "free disk space or choose a writable --out; earlier checkpoints are intact") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    best = best_name(run_dir)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        if old.name != best:  # the checkpoint marked best by evaluation outlives the rotation
            shutil.rmtree(old, ignore_errors=True)
    return final


def best_name(run_dir: Path) -> str | None:
    """The checkpoint that checkpoints/best.json names, if any."""
    path = Path(run_dir) / "checkpoints" / "best.json"
    try:
        name = json.loads(path.read_text())["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _unshare(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing memory (tied weights): store each once as its own copy."""
    seen: dict[int, str] = {}
    out = {}
    for k, v in tensors.items():
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        out[k] = v.clone() if ptr in seen and ptr != -1 else v
        seen.setdefault(ptr, k)
    return out


def clean_partial(run_dir: Path) -> None:
    """Remove leftovers of writes that a kill interrupted (they never count as checkpoints)."""
    root = Path(run_dir) / "checkpoints"
    for p in [*root.glob(".tmp-step-*"), *root.glob(".old-step-*")] if root.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first; a directory without COMPLETE does not exist."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    # a symlinked checkpoint would load another run's weights under this run's name
    return sorted(p for p in root.glob("step-*") if not p.is_symlink() and (p / COMPLETE).is_file())


TENSOR_FILES = ("model.safetensors", "optim.safetensors")  # what state.json's checksums must cover, exactly
MAX_STATE_BYTES = 16 << 20


def verify(ckpt: Path) -> dict[str, Any]:
    """state.json of a checkpoint whose files match their recorded checksums; else CheckpointError.

    COMPLETE holds the checksum of state.json (checkpoints written before it did hold "ok", and
    their state.json is only checked for sane values); state.json holds those of the tensor files,
    both of which must be named. No file of a checkpoint may be a symbolic link.
    """
    damaged = "the checkpoint is damaged; an older one or --resume from it can be used"
    state_path = ckpt / "state.json"
    try:
        for name in (COMPLETE, "state.json", *TENSOR_FILES):
            if (ckpt / name).is_symlink():
                raise CheckpointError(f"{ckpt / name} is a symbolic link", "a checkpoint holds its own files")
        if state_path.stat().st_size > MAX_STATE_BYTES:
            raise CheckpointError(f"{state_path} is {state_path.stat().st_size:,} bytes", damaged)
        raw = state_path.read_bytes()
        marker = (ckpt / COMPLETE).read_text(encoding="utf-8", errors="replace").split()
        state = json.loads(raw)
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{state_path} is unreadable: {e}", damaged) from None
    if marker != ["ok"] and marker != ["state.json", "sha256", hashlib.sha256(raw).hexdigest()]:
        raise CheckpointError(f"{state_path} does not match the checksum in {COMPLETE}", damaged)
    check_state(state, ckpt)
    for name, digest in state["sha256"].items():
        path = ckpt / name
        if not path.is_file() or _sha256(path) != digest:
            raise CheckpointError(f"{path} does not match its checksum", damaged)
    return state


def check_state(state: Any, ckpt: Path) -> None:
    """Types and ranges of state.json's fields, so a lying file is refused in one line."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{ckpt}/state.json: {what}", "the checkpoint is damaged or was edited")

    if not isinstance(state, dict):
        raise bad("it holds no mapping")
    sums = state.get("sha256")
    if not isinstance(sums, dict) or sorted(sums) != sorted(TENSOR_FILES):
        raise bad(f"'sha256' must list exactly {', '.join(TENSOR_FILES)}")
    if not all(isinstance(v, str) and len(v) == 64 for v in sums.values()):
        raise bad("'sha256' values must be 64 hex digits")
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 1 << 40:
        raise bad(f"'step' is {step!r}")
    for key, lo, hi in (("lr_scale", 0.0, 1.0), ("elapsed", 0.0, 1e12)):
        v = state.get(key, lo if key == "elapsed" else 1.0)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi or (key == "lr_scale" and v == 0):
            raise bad(f"'{key}' is {v!r}")
    rollbacks = state.get("rollbacks", 0)
    if not isinstance(rollbacks, int) or isinstance(rollbacks, bool) or not 0 <= rollbacks < 1000:
        raise bad(f"'rollbacks' is {rollbacks!r}")
    ema = state.get("ema_updates", {})
    if not isinstance(ema, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 40
                                            for v in ema.values()):
        raise bad(f"'ema_updates' is {ema!r}")
    best = state.get("best")
    if best is not None and not (isinstance(best, dict) and isinstance(best.get("step"), int)
                                 and isinstance(best.get("value"), (int, float))):
        raise bad(f"'best' is {best!r}")
    if not isinstance(state.get("param_groups"), dict):
        raise bad("'param_groups' is missing")


def find_checkpoint(run_dir: Path, which: str = "latest", warn=print, skipped: list[str] | None = None) -> Path | None:
    """The newest intact checkpoint (damaged ones are reported, skipped and appended to `skipped`), or a named one."""
    ckpts = list_checkpoints(run_dir)
    if which not in ("latest", "best"):
        path = Path(run_dir) / "checkpoints" / which
        if path not in ckpts:
            raise CheckpointError(f"no complete checkpoint {which} in {run_dir}",
                                  f"available: {', '.join(p.name for p in ckpts) or 'none'}")
        verify(path)
        return path
    if which == "best":
        name = best_name(run_dir)
        if name is None or (Path(run_dir) / "checkpoints" / name) not in ckpts:
            raise CheckpointError(f"{run_dir} has no checkpoint marked best",
                                  "train with --set train.eval_every=N to mark one, or use latest")
        return find_checkpoint(run_dir, name, warn, skipped)
    passed: list[str] = []
    for ckpt in reversed(ckpts):
        try:
            verify(ckpt)
        except CheckpointError as e:
            warn(f"warning: skipping damaged checkpoint {ckpt.name}: {e}")
            passed.append(ckpt.name)
            continue
        if passed:
            warn(f"warning: using the older checkpoint {ckpt.name} instead of {passed[0]}")
        if skipped is not None:
            skipped += passed
        return ckpt
    return None


def load_checkpoint(ckpt: Path, model: torch.nn.Module,
                    opts: dict[str, torch.optim.Optimizer] | None = None) -> dict[str, Any]:
    """Load weights (and optimizer + RNG state when opts are given); returns state.json."""
    state = verify(ckpt)
    weights = read_tensors(ckpt / "model.safetensors")
    bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:  # checksums vouch for the bytes, not for the numbers: NaN weights are never sampled or measured
        raise CheckpointError(f"{ckpt} holds non-finite weights ({bad[0]})",
                              "use an earlier checkpoint (--checkpoint step-...) or retrain")
    hint = "load it with the config.yaml and data.json of the run that wrote it"
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # shapes that differ (an edited config.yaml or data.json)
        first = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{ckpt} does not fit this model: {first}", hint) from None
    if missing or unexpected:
        raise CheckpointError(f"{ckpt} does not fit this model (missing {missing[:2]}, unexpected {unexpected[:2]})",
                              hint)
    if opts is not None:
        opt_t = read_tensors(ckpt / "optim.safetensors")
        try:
            torch.set_rng_state(opt_t.pop("rng/torch"))
            restore_optimizers(opts, opt_t, state["param_groups"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt}: optimizer state does not fit this model ({e})", hint) from None
    return state
