"""What a GRPO training stage needs around grpo.py: its models, devices, checkpoints and logs.

    load_stage        the policy (float32), its frozen reference and the frozen helper H_T
    make_accelerator  bf16 autocast on GPU over float32 master weights
    rank_share        this process's share of a step's prompts under `accelerate launch`
    save_checkpoint / load_checkpoint / latest_checkpoint
                      step checkpoints, so that a stopped stage resumes exactly where it was
    print_metrics     a metrics row's headline numbers on one line
    log_samples       every sample's prompt, completion and reward, to read what the reward paid for

Every `checkpoint_every` GRPO steps, `grpo.train` saves the policy, the optimizer state and every
process's RNG state to `<stage output>_checkpoints/step_<n>.pt`; a restarted stage loads the
newest one and continues with the next step, with the same results as a run that never stopped.
Only the newest file is kept, and it is written atomically, so a kill never leaves a broken one.
"""

import os
import time
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

import rollout
import speedups
from data import append_jsonl, read_jsonl, write_jsonl


# -----------------------------------------------------------------------------
# Models and devices


def load_frozen(path, device=None):
    """A model that only answers and judges: eval mode, no gradients."""
    model, tokenizer = rollout.load(path, device=device)
    model.eval().requires_grad_(False)
    return model, tokenizer


def load_stage(grpo_cfg, start_path, helper_path):
    """What one GRPO stage holds in memory, and nothing else: (policy, tokenizer, (helper,
    helper_tokenizer), reference). The policy trains in float32; the frozen helper H_T (Filter,
    Judger and answerer) and the frozen reference are in the device's usual precision."""
    policy, tokenizer = rollout.load(start_path, dtype=torch.float32)
    helper = load_frozen(helper_path)
    reference = None
    if grpo_cfg.beta != 0:
        # in SEIF the Follower's start F_{T-1} IS the helper H_T, so one frozen copy serves both
        reference_is_helper = start_path == helper_path and not grpo_cfg.ref_on_cpu
        reference = helper[0] if reference_is_helper else load_frozen(
            start_path, device="cpu" if grpo_cfg.ref_on_cpu else None)[0]
    return policy, tokenizer, helper, reference


def prepare(policy, cfg, accelerator):
    """(policy, optimizer, bare model) ready to train: AdamW with the stage's settings (SEIF:
    constant lr), both placed by `accelerator`, and gradient checkpointing if asked for."""
    # fused: one kernel for all parameters instead of a Python loop over them
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in policy.parameters())
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                                  fused=fused)
    policy, optimizer = accelerator.prepare(policy, optimizer)
    model = accelerator.unwrap_model(policy)  # generate() and saving need the bare model
    if cfg.gradient_checkpointing:
        speedups.set_checkpointing(model, True)
    return policy, optimizer, model


def step_schedule(num_items, prompts_per_step, epochs, max_steps, seed):
    """The prompt indices of every GRPO step: each epoch a new shuffle, cut into steps."""
    generator = torch.Generator().manual_seed(seed)  # the same order on every process
    return [order[i : i + prompts_per_step]
            for order in (torch.randperm(num_items, generator=generator).tolist() for _ in range(epochs))
            for i in range(0, len(order), prompts_per_step)][:max_steps]


def count_bad_updates(streak, bad_updates, max_bad_updates, desc):
    """The run of updates in a row with a non-finite loss or gradient; raises at max_bad_updates."""
    streak = streak + bad_updates if bad_updates else 0
    if streak >= max_bad_updates:
        raise FloatingPointError(f"{desc}: {streak} updates in a row had a non-finite loss or "
                                 "gradient and were skipped; stopping. Try a lower learning rate.")
    return streak


def step_row(rewards, group_size, info, metrics, completion_mask, rollout_time, step_start):
    """One GRPO step's metrics row: rewards, the reward's info, the update's metrics, lengths, speed."""
    lengths = completion_mask.sum(dim=1).float()
    return {"reward_mean": rewards.mean().item(), "reward_std": rewards.std().item(),
            "zero_std_groups": (rewards.view(-1, group_size).std(dim=1) == 0).float().mean().item(),
            **info, **metrics, "completion_len_mean": lengths.mean().item(),
            "completion_len_max": lengths.max().item(), "rollout_time": rollout_time,
            "rollout_tokens_per_s": lengths.sum().item() / rollout_time, "step_time": time.time() - step_start}


def summarise(history):
    """Micro-batch stats -> one value per key: the max of "*_max" keys, the mean of the others."""
    def mean(values):
        return sum(values) / len(values) if values else 0.0
    return {key: (max if key.endswith("_max") else mean)([h[key] for h in history if key in h])
            for key in sorted({k for h in history for k in h})}


def make_accelerator():
    # bf16 autocast on GPU with float32 master weights: SEIF's lr of 1e-6 is below bf16's
    # resolution for typical weights, so updates to bf16 weights would round away to nothing.
    return Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")


def rank_share(prompt_indices, grpo_cfg, accelerator):
    """(this process's prompt indices, its config) for one step under `accelerate launch`.

    Each process samples its own share of the step's prompts, whole groups so that advantages
    stay per group, and accelerate all-reduces the gradients. The step is padded (by repeating
    prompts) to a multiple of the process count, and each process makes the same number of
    updates with its share of every update's prompts."""
    rank, world = accelerator.process_index, accelerator.num_processes
    padded = (prompt_indices * world)[: -(-len(prompt_indices) // world) * world]
    return padded[rank::world], replace(grpo_cfg, prompts_per_update=max(grpo_cfg.prompts_per_update // world, 1))


def mean_over_processes(accelerator, row):
    """Average every metric over processes (a no-op with one process)."""
    if accelerator.num_processes == 1:
        return row
    values = accelerator.reduce(torch.tensor(list(row.values()), device=accelerator.device), "mean")
    return dict(zip(row, values.tolist()))


def print_metrics(row):
    """The default `log` of `grpo.train`: a metrics row's headline numbers on one line."""
    keys = ("role", "round", "step", "reward_mean", "format_pass", "kl", "step_time")
    print(" ".join(f"{k}={row[k]:.3g}" if isinstance(row[k], float) else f"{k}={row[k]}"
                   for k in keys if k in row))


def log_samples(path, step, items, texts, rewards):
    """Append one JSONL row per sample of a GRPO step: the last prompt turn, the completion and its
    reward. The rows of a step that a restarted stage redoes are dropped first (forget_samples)."""
    append_jsonl(path, *({"step": step, "prompt": item["messages"][-1]["content"], "completion": text,
                          "reward": reward} for item, text, reward in zip(items, texts, rewards)))


def samples_file(path, first_step, accelerator):
    """`path` ready for a stage's samples (the rows of steps it will redo dropped), on the main
    process; None elsewhere, or when no path is given."""
    if not path or not accelerator.is_main_process:
        return None
    forget_samples(path, first_step)
    return path


def forget_samples(path, first_step):
    """Drop the rows of steps from `first_step` on (a restarted stage samples them again)."""
    if Path(path).exists():
        write_jsonl(path, [row for row in read_jsonl(path, empty_ok=True) if row["step"] < first_step])


# -----------------------------------------------------------------------------
# Step checkpoints


def checkpoint_path(checkpoint_dir, step):
    return Path(checkpoint_dir) / f"step_{step:06d}.pt"


def latest_checkpoint(checkpoint_dir):
    """(step, path) of the newest `step_<n>.pt` in checkpoint_dir, or (None, None)."""
    steps = [(int(path.stem.removeprefix("step_")), str(path)) for path in Path(checkpoint_dir).glob("step_*.pt")]
    return max(steps) if steps else (None, None)


def save_checkpoint(checkpoint_dir, step, model, optimizer, accelerator):
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


def load_checkpoint(checkpoint_dir, model, optimizer, accelerator):
    """Restore the latest checkpoint, if any; returns the step to start from."""
    step, path = latest_checkpoint(checkpoint_dir)
    if path is None:
        return 0
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"][accelerator.process_index])
    return step + 1
