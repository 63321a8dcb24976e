"""Step checkpoints: what a stopped training stage needs to resume exactly where it was.

Every `checkpoint_every` GRPO steps, `grpo.train` saves the policy, the optimizer state and every
process's RNG state to `<stage output>_checkpoints/step_<n>.pt`; a restarted stage loads the
newest one and continues with the next step, with the same results as a run that never stopped.
Only the newest file is kept, and it is written atomically, so a kill never leaves a broken one.
"""

import os
from pathlib import Path

import torch
from accelerate.utils import gather_object


def checkpoint_path(checkpoint_dir, step):
    return Path(checkpoint_dir) / f"step_{step:06d}.pt"


def latest(checkpoint_dir):
    """(step, path) of the newest `step_<n>.pt` in checkpoint_dir, or (None, None)."""
    steps = [(int(path.stem.removeprefix("step_")), str(path)) for path in Path(checkpoint_dir).glob("step_*.pt")]
    return max(steps) if steps else (None, None)


def save(checkpoint_dir, step, model, optimizer, accelerator):
    """Policy, optimizer and every process's RNG state after `step`, at a step boundary."""
    rng_states = gather_object([torch.get_rng_state()])  # one per process: their samples differ
    if accelerator.is_main_process:
        path = checkpoint_path(checkpoint_dir, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_states}
        torch.save(state, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)  # atomic: a kill never leaves a half-written checkpoint
        for old in path.parent.glob("step_*.pt"):
            if old != path:
                old.unlink()
    accelerator.wait_for_everyone()


def load(checkpoint_dir, model, optimizer, accelerator):
    """Restore the latest checkpoint, if any; returns the step to start from."""
    step, path = latest(checkpoint_dir)
    if path is None:
        return 0
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"][accelerator.process_index])
    return step + 1
