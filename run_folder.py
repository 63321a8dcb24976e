"""A loop run's folder: which stages are finished, so that a restarted run skips them.

loop.py calls `open_run_folder` once, then `begin_stage` / `end_stage` around every stage of
every round. The folder keeps progress.json (the finished stages), metrics.jsonl (one row per
GRPO step and per evaluation) and the settings of each start (settings.py). A stage redone after
a crash is seeded exactly as its first try, and the metrics rows an interrupted attempt logged
after its last step checkpoint are dropped, so a restarted run gives the same results.
"""

import gc
import json
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState

import training
from data import append_jsonl, read_jsonl, write_json, write_jsonl
from settings import record_settings, settings_changes


@dataclass
class RunFolder:
    path: Path
    finished: list  # stage names ("round_1/instructor") that a start of this run completed
    seed: int  # loop.seed: each stage's random state derives from it and the stage's name
    timings: dict = field(default_factory=dict)  # stage name -> seconds, this start only

    @property
    def metrics_path(self):
        return self.path / "metrics.jsonl"


def _checkpointed_stages(run_dir):
    """Training stages interrupted after a step checkpoint: a restart resumes them, so they count as started."""
    return sorted({f"{path.parent.parent.name}/{path.parent.name.removesuffix('_checkpoints')}"
                   for path in run_dir.glob("round_*/*_checkpoints/step_*.pt")})


def stage_parts(stage_name):
    """"round_2/follower" -> (2, "follower")."""
    round_part, role = stage_name.split("/")
    return int(round_part.removeprefix("round_")), role


def open_run_folder(settings):
    """The run's folder, its finished stages, and its settings checked against them (a UserError
    before anything loads or is written when a finished stage depends on a changed field)."""
    path = Path(settings.loop.runs_dir) / settings.loop.run_name
    progress = path / "progress.json"
    finished = json.loads(progress.read_text())["done"] if progress.exists() else []
    changes = settings_changes(path, settings, finished + _checkpointed_stages(path))
    PartialState().wait_for_everyone()  # every process has read the folder before the main one writes
    if PartialState().is_main_process:
        record_settings(path, settings, changes)
    return RunFolder(path, finished, settings.loop.seed)


def begin_stage(run_folder, name, checkpoint_dir=None):
    """False if a previous start finished `name`. Otherwise get it ready to run and return True:
    drop the metrics rows an interrupted attempt logged after its last checkpoint (they would
    repeat), and seed it, so that a stage redone after a crash samples exactly as the first try."""
    if name in run_folder.finished:
        print(f"{name}: already done, skipping")
        return False
    state = PartialState()
    if state.is_main_process:
        resumed_step = training.latest_checkpoint(checkpoint_dir)[0] if checkpoint_dir else None
        _drop_metrics(run_folder.metrics_path, name, after_step=resumed_step)
    torch.manual_seed(run_folder.seed + zlib.crc32(name.encode()) + state.process_index)
    run_folder.timings[name] = time.time()
    return True


def end_stage(run_folder, name, checkpoint_dir=None, finished=True):
    """Record `name` as finished (unless it did nothing: an evaluation skipped offline is tried
    again at the next start) and free the memory its models held."""
    state = PartialState()
    state.wait_for_everyone()  # generation and evaluation run on the main process only
    run_folder.timings[name] = time.time() - run_folder.timings[name]
    if finished:
        run_folder.finished.append(name)
        if state.is_main_process:
            write_json(run_folder.path / "progress.json", {"done": run_folder.finished})
            if checkpoint_dir:
                shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the stage's output supersedes it
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def metrics_logger(run_folder, name):
    """log(row) for stage `name`: appends the row, tagged with role and round, to metrics.jsonl."""
    round_index, role = stage_parts(name)

    def log(row):
        row = {"role": role, "round": round_index, **row}
        append_jsonl(run_folder.metrics_path, row)
        training.print_metrics(row)
    return log


def _drop_metrics(metrics_path, stage_name, after_step=None):
    """Remove a stage's rows (only those after `after_step`, when it resumes from a checkpoint)."""
    if not metrics_path.exists():
        return
    round_index, role = stage_parts(stage_name)
    rows = read_jsonl(metrics_path, empty_ok=True)
    kept = [r for r in rows if not (r.get("role") == role and r.get("round") == round_index
                                    and (after_step is None or r.get("step", -1) > after_step))]
    if len(kept) != len(rows):
        write_jsonl(metrics_path, kept)
