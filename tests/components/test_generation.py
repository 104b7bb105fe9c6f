"""The generation engines: vLLM when it can run, HF generate otherwise, and the choice is explained."""

import sys
import types

import pytest

from components import accounting, generation


@pytest.fixture
def no_gpu(monkeypatch):
    """What a CPU machine reports, on any machine (the suite must pass on a GPU machine too)."""
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)


def test_without_a_gpu_auto_falls_back_to_hf_and_says_why(no_gpu):
    backend, why = generation.choose_backend("auto")
    assert backend == "hf" and "GPU present=False" in why


def test_asking_for_vllm_where_it_cannot_run_is_an_error(no_gpu):
    with pytest.raises(RuntimeError, match="generation_backend: vllm, but vllm installed=.*GPU present=False"):
        generation.choose_backend("vllm")


def fake_vllm(calls: list):
    """A stand-in for vllm's LLM/SamplingParams API (LLM.generate -> RequestOutput.outputs[i].text)."""
    module = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class LLM:
        def __init__(self, model, seed, gpu_memory_utilization):
            calls.append(("init", model, seed))

        def generate(self, prompts, sampling, use_tqdm):
            calls.append(("generate", prompts, sampling.kwargs))
            n = sampling.kwargs["n"]
            completion = types.SimpleNamespace
            return [
                types.SimpleNamespace(outputs=[completion(text=f"{p}#{i}", token_ids=[0] * (i + 1)) for i in range(n)]) for p in prompts
            ]

    module.LLM, module.SamplingParams = LLM, SamplingParams
    module.__spec__ = types.SimpleNamespace(name="vllm")
    return module


def test_with_vllm_and_a_gpu_generation_goes_through_vllm(monkeypatch, tiny_base_model):
    calls: list = []
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm(calls))
    monkeypatch.setattr(generation.importlib.util, "find_spec", lambda name: object() if name == "vllm" else None)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)

    tokenizer, model, backend, why = generation.load_for_generation(tiny_base_model, "auto", seed=3)
    assert backend == "vllm" and why == "vLLM is installed and a GPU is present"
    monkeypatch.setattr(accounting, "device", lambda: {"device": "fake GPU", "device_count": 1})  # no CUDA to name here
    with accounting.metered() as usage:
        out = generation.generate(model, tokenizer, ["a", "b"], max_new_tokens=7, num_samples=2, temperature=0.6, top_p=0.9, seed=3)
    assert out == [["a#0", "a#1"], ["b#0", "b#1"]]
    assert (usage.samples_generated, usage.tokens_generated) == (4, 1 + 2 + 1 + 2), "the cost accounting counts vLLM's tokens"
    greedy = generation.generate(model, tokenizer, ["c"], max_new_tokens=5)
    assert greedy == [["c#0"]]
    assert calls[0] == ("init", tiny_base_model, 3)
    assert calls[1][2] == {"n": 2, "temperature": 0.6, "top_p": 0.9, "max_tokens": 7, "seed": 3}
    assert calls[2][2]["temperature"] == 0.0 and calls[2][2]["top_p"] == 1.0


def test_generation_precision_is_measured_said_and_switchable(monkeypatch):
    from components import modeling

    assert generation.generation_dtype("float32") == ("float32", "generation_dtype: float32 (configured)")
    assert generation.generation_dtype("bfloat16")[0] == "bfloat16"
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    # the flags say avx512_bf16 on both kinds of CPU; only the measured rate tells them apart
    rates = {"float32": 155e9, "bfloat16": 2.5e9}  # an EPYC without AMX (bench/mfu.py)
    monkeypatch.setattr(modeling, "matmul_rate", lambda dtype: rates[dtype])
    modeling.BF16_DECISIONS.clear()
    dtype, why = generation.generation_dtype("auto")
    assert dtype == "float32" and "slower" in why and "bf16 2 GFLOP/s, fp32 155" in why
    rates["bfloat16"] = 586e9  # an AMX Xeon
    modeling.BF16_DECISIONS.clear()
    assert generation.generation_dtype("auto")[0] == "bfloat16"
    assert modeling.math_settings()["bf16_auto_cpu"].startswith("bf16: the CPU's bf16 is faster"), "the choice is in the lineage"
    modeling.BF16_DECISIONS.clear()


def test_bf16_auto_trains_in_bf16_only_where_it_is_measured_faster(monkeypatch, capsys):
    from components import modeling
    from components.sft import SFTConfig

    cfg = SFTConfig(bf16="auto")
    for fast in (False, True):
        monkeypatch.setattr(modeling, "bf16_is_fast", lambda on_cpu, fast=fast: (fast, "measured"))
        assert cfg.trl_kwargs()["bf16"] is fast
        assert f"bf16: auto -> {fast}: measured" in capsys.readouterr().out, "the run's log says what auto chose"
    assert SFTConfig(bf16=True).trl_kwargs()["bf16"] is True, "asking for bf16 is honoured as asked"
    assert modeling.matmul_rate("float32", size=64, repeats=1) > 0


def test_torch_threads_follow_the_cores_the_process_has(monkeypatch):
    import torch

    from components import modeling

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(modeling, "available_cores", lambda: 1)
    try:
        assert modeling.configure_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        torch.set_num_threads(2)
        assert modeling.configure_threads() == 2, "an explicit OMP_NUM_THREADS wins"
    finally:
        torch.set_num_threads(before)


def test_a_fixed_thread_count_is_used_and_recorded_with_the_math_settings(monkeypatch):
    import torch

    from components import modeling

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(modeling, "available_cores", lambda: 1)
    try:
        assert modeling.configure_threads(2) == 2, "execution.torch_threads beats the cores the process has"
        settings = modeling.math_settings()
        assert settings["torch_threads"] == "2" and settings["omp_num_threads_env"] == "unset"
        assert settings["torch"] == torch.__version__ and settings["cpu_flags"]
    finally:
        torch.set_num_threads(before)


def test_a_fixed_thread_count_reproduces_the_trained_weights_bitwise():
    """execution.torch_threads is fixed because a kernel may split its reductions by thread: whether
    1 and 2 threads then end apart depends on the CPU and oneDNN's choice of blocking (they did on
    one machine of this kind and not on another), so only reproduction at one count is asserted."""
    import torch

    def train(threads: int) -> torch.Tensor:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            torch.manual_seed(0)
            layer = torch.nn.Linear(256, 256)
            optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-2)
            data = torch.randn(8192, 256, generator=torch.Generator().manual_seed(1))
            for _ in range(3):  # a 2M-element loss sum: its parallel reduction splits by thread
                layer(data).pow(2).sum().div(data.numel()).backward()
                optimizer.step()
                optimizer.zero_grad()
            return layer.weight.detach().clone()
        finally:
            torch.set_num_threads(before)

    for threads in (1, 2):
        assert torch.equal(train(threads), train(threads)), f"{threads} thread(s) reproduce the weights bitwise"


def test_hf_generation_goes_to_the_gpu_where_there_is_one(monkeypatch):
    """A GPU pod without vLLM generates with HF on its GPU, not on its CPU (found on the first H200 run)."""
    import torch

    class Model:
        device = torch.device("cpu")

        def to(self, where):
            self.device = torch.device(where)
            return self

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model, device = generation.on_fastest_device(Model())
    assert device == "cuda" and model.device.type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert generation.on_fastest_device(Model())[1] == "cpu"
