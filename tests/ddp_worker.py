"""Worker for test_multiprocess.py, started as 2 processes by torchrun.

Every rank builds the same tiny model, runs 2 GRPO steps on its share of the prompts, and
saves its final parameters to OUT/rank<r>.pt next to the starting ones (OUT/start.pt).
"""

import sys
from pathlib import Path

import torch
from accelerate import Accelerator

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from conftest import make_tiny_model, make_tiny_tokenizer  # noqa: E402

import grpo  # noqa: E402


def reward(items, texts):
    """Longer completions score higher; enough to give every group some variance."""
    return [len(text) / 100 for text in texts], {}


def main(out):
    accelerator = Accelerator(cpu=True)
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer, seed=0)
    if accelerator.is_main_process:
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out / "start.pt")
    torch.manual_seed(1000 + accelerator.process_index)  # ranks sample different completions
    items = [{"messages": [{"role": "user", "content": f"Count to {i}."}]} for i in range(8)]
    cfg = grpo.GRPOConfig(group_size=4, max_new_tokens=6, prompts_per_step=4, prompts_per_update=2,
                          micro_batch_size=3, lr=1e-2, beta=0.0)
    rows = []
    trained = grpo.train(model, tokenizer, items, reward, cfg, accelerator, max_steps=2, log=rows.append)
    torch.save(trained.state_dict(), out / f"rank{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        torch.save(rows, out / "metrics.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
