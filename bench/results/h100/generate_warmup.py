"""Run on the H100 from the repository root with .tok/qwen = the Qwen tokenizer folder; output in generate_warmup.txt."""
import sys, time, torch
sys.path.insert(0, ".")
import reply_format, rollout, speedups
from data import default_seeds_path, read_prompts
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
sys.path.insert(0, "bench"); from memory import QWEN25_05B
tok = AutoTokenizer.from_pretrained(".tok/qwen")
torch.manual_seed(0)
m = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)).cuda().to(torch.bfloat16).eval()
chats = [reply_format.messages(s) for s in read_prompts(default_seeds_path())[:32]]
def t(name, **kw):
    torch.cuda.synchronize(); s = time.time()
    r = rollout.generate(m, tok, chats, group_size=5, max_new_tokens=256, batch_size=160, **kw)
    torch.cuda.synchronize(); d = time.time() - s
    print(f"{name}: {d:.1f} s, {r.completion_mask.sum().item()/d:.0f} tok/s", flush=True)
t("warm")
t("default")
t("no share", share_prompts=False)
class Noop(speedups.SampledLogprobs):
    def __call__(self, input_ids, scores): return scores
    def logprobs(self, ids): return torch.zeros(ids.shape)
real = speedups.SampledLogprobs; speedups.SampledLogprobs = Noop
t("no recorder")
t("no recorder, no share", share_prompts=False)
speedups.SampledLogprobs = real
ids = torch.randint(1000, 150000, (160, 80), device="cuda")
torch.cuda.synchronize(); s = time.time()
with torch.no_grad():
    o = m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=256, min_new_tokens=256, do_sample=True, top_k=0, pad_token_id=0)
torch.cuda.synchronize(); d = time.time() - s
print(f"plain generate no padding: {d:.1f} s, {160*256/d:.0f} tok/s")
