"""Several processes on the real path: `aigc train --nproc 2` starts torchrun, whose two ranks talk over
gloo on this CPU; nothing is simulated. Also the device option, on the devices this machine has."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from .conftest import run_cli, tiny_gan

FIVE_LETTER = ["abcde", "bcdea", "cdeab", "deabc", "eabcd", "fghij", "ghijf", "hijfg", "ijfgh", "jfghi",
               "klmno", "lmnok", "mnokl", "noklm", "oklmn", "pqrst", "qrstp", "rstpq", "stpqr", "tpqrs",
               "uvwxy", "vwxyu", "wxyuv", "xyuvw", "yuvwx", "acegi", "bdfhj", "kmoqs", "lnprt", "uwyac",
               "vxzbd", "aeiou", "bfjnr", "cgkos", "dhlpt", "eimqu", "fjnrv", "gkosw"]


def weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"step-{step:08d}" / "model.safetensors"))


def model_bytes(run: Path, step: int) -> bytes:
    return (run / "checkpoints" / f"step-{step:08d}" / "model.safetensors").read_bytes()


def write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_processes_take_the_step_one_process_takes_at_twice_the_batch(tmp_path):
    """A family without noise or batch statistics (a transformer with dropout 0) on rows of equal length
    (so each rank's mean loss weighs its tokens as the global mean does): 2 ranks x 8 == 1 process x 16,
    up to float rounding (the order of sums differs)."""
    names = tmp_path / "names.txt"
    names.write_text("\n".join(FIVE_LETTER) + "\n")
    cfg = write(tmp_path / "t.yaml", {
        "name": "t", "data": {"source": f"lines:{names}"},
        "model": {"name": "transformer", "layers": 1, "heads": 2, "width": 16, "dropout": 0.0},
        "train": {"steps": 20, "batch_size": 16, "lr": 0.003, "log_every": 5, "sample_every": 0,
                  "ckpt_every": 0, "progress": False, "threads": 1}})
    one, two, nodes = tmp_path / "one", tmp_path / "two", tmp_path / "nodes"
    assert run_cli("train", str(cfg), "--out", str(one), "--quiet").returncode == 0
    # torchrun itself, as the README shows it
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "aigc", "train", str(cfg), "--out", str(two), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    # two "machines" (two torchrun agents, one process each) meeting through the c10d rendezvous
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # --local-addr: the ranks meet at the address given, not at whatever this host's name resolves to (a CI
    # container's name may resolve to an address its processes cannot reach: the first CI run hung there).
    # Output goes to files, not pipes: a pipe nobody reads while we wait on the other agent can fill and
    # stall its writer, and the two agents wait for each other.
    agent = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
             "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nodes",
             "--local-addr", "127.0.0.1", "-m", "aigc", "train", str(cfg), "--out", str(nodes), "--quiet"]
    logs = [tmp_path / f"agent-{i}.log" for i in range(2)]
    agents = []
    for log in logs:
        with log.open("w") as handle:
            agents.append(subprocess.Popen(agent, stdout=handle, stderr=subprocess.STDOUT, text=True))
    deadline = time.monotonic() + 300
    for job in agents:
        try:
            job.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            break
    for job in agents:
        if job.poll() is None:      # a hang fails with both agents' own words, not a bare timeout
            job.kill()
            job.wait()
    told = "\n".join(f"--- {x.name}\n{x.read_text()[-1500:]}" for x in logs)
    assert [job.returncode for job in agents] == [0, 0], told
    a, start = weights(one, 20), weights(one, 0)
    moved = max((a[k] - start[k]).abs().max().item() for k in a)
    assert moved > 0.02, moved              # training really moved the weights ...
    for run in (two, nodes):
        b = weights(run, 20)
        gap = max((a[k] - b[k]).abs().max().item() for k in a)
        assert gap < 1e-4, (run.name, gap, moved)  # ... and every run moved them the same way
        losses = [[yaml.safe_load(line)["loss"] for line in (r / "metrics.jsonl").read_text().splitlines()]
                  for r in (one, run)]
        assert losses[0] == pytest.approx(losses[1], rel=1e-5)  # the logged loss is the ranks' mean


def test_a_conditional_flow_resumes_under_two_processes_to_the_byte_and_samples_in_one(tmp_path):
    """The flow family draws times, noise and label dropout every step, and keeps an EMA: each rank's
    stream is a function of (seed, step, rank), so all of it repeats on resume under 2 ranks, through
    the same trainer as the GAN (whose resume the SIGKILL test below checks); the 2-rank checkpoint
    samples in a 1-process `aigc sample`."""
    cfg = write(tmp_path / "flow.yaml", {
        "name": "f", "seed": 0, "data": {"source": "digits"},
        "model": {"name": "flow", "widths": [8, 16], "conditional": True, "sample_steps": 4},
        "train": {"steps": 6, "batch_size": 16, "lr": 2e-3, "log_every": 3, "sample_every": 0, "ckpt_every": 3,
                  "progress": False, "threads": 1}})
    full, part = tmp_path / "full", tmp_path / "part"
    for args in ([str(cfg), "--out", str(full)], [str(cfg), "--out", str(part), "--steps", "3"],
                 ["--out", str(part), "--resume", "--steps", "6"]):
        r = run_cli("train", *args, "--quiet", "--nproc", "2")
        assert r.returncode == 0, r.stderr[-2000:]
    assert model_bytes(full, 6) == model_bytes(part, 6)
    out = tmp_path / "s.png"
    r = run_cli("sample", str(full), "--n", "10", "--label", "3", "--seed", "1", "--out", str(out))
    assert r.returncode == 0 and out.stat().st_size > 100, r.stderr


def _rank_pid(run_dir: Path, local_rank: int) -> int | None:
    """The pid of the worker process with this LOCAL_RANK training into run_dir (read from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(run_dir).encode() in cmd and f"LOCAL_RANK={local_rank}".encode() in env:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process in /proc")
def test_a_killed_rank_restarts_the_job_which_ends_with_the_uninterrupted_weights(tmp_path):
    steps = 400
    cfg = write(tmp_path / "gan.yaml", tiny_gan(g_hidden=[128, 128], d_hidden=[128, 128]) | {
        "train": {"steps": steps, "batch_size": 64, "log_every": 50, "sample_every": 0, "ckpt_every": 100,
                  "progress": False, "threads": 1}})
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    r = run_cli("train", str(cfg), "--out", str(clean), "--quiet", "--nproc", "2")
    assert r.returncode == 0, r.stderr[-2000:]

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    job = subprocess.Popen([sys.executable, "-m", "aigc", "train", str(cfg), "--out", str(killed), "--nproc", "2",
                            "--max-restarts", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = killed / "checkpoints" / "step-00000100"
    deadline = time.time() + 120
    while not first.exists() and job.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim = _rank_pid(killed, 1)
    assert victim is not None and not (killed / "checkpoints" / f"step-{steps:08d}").exists()
    os.kill(victim, signal.SIGKILL)
    out, err = job.communicate(timeout=300)
    assert job.returncode == 0, err[-3000:]
    assert "resuming" in out  # torchrun restarted both ranks, which went on from the last checkpoint
    assert model_bytes(killed, steps) == model_bytes(clean, steps)


def test_mistakes_with_several_processes_are_one_line(tmp_path):
    cfg = write(tmp_path / "gan.yaml", tiny_gan() | {"train": {**tiny_gan()["train"], "batch_size": 33}})
    r = run_cli("train", str(cfg), "--out", str(tmp_path / "r"), "--nproc", "2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "multiple of 2" in r.stderr, r.stderr
    assert not (tmp_path / "r").exists()
    r = run_cli("train", str(cfg), "--out", str(tmp_path / "r"), "--max-restarts", "2")
    assert r.returncode == 2 and "--nproc" in r.stderr
    r = run_cli("train", str(cfg), "--out", str(tmp_path / "r"), "--nproc", "0")
    assert r.returncode == 2 and "--nproc is 0" in r.stderr
    # a folder that holds a run: refused before any process starts ...
    done = tmp_path / "done"
    assert run_cli("train", write(tmp_path / "ok.yaml", tiny_gan()), "--out", str(done), "--quiet").returncode == 0
    r = run_cli("train", str(tmp_path / "ok.yaml"), "--out", str(done), "--nproc", "2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "already holds" in r.stderr, r.stderr
    # ... and, started by torchrun itself, refused by rank 0 while rank 1 stops quietly instead of waiting;
    # torchrun's restart is refused again, not turned into a resume of the run it was told to leave alone
    before = sorted(p.name for p in (done / "checkpoints").iterdir())
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "--max-restarts", "1", "-m", "aigc", "train", str(tmp_path / "ok.yaml"), "--out", str(done)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode != 0 and r.stderr.count("error:") == 2 and "already holds" in r.stderr, r.stderr
    assert "resuming" not in r.stdout and sorted(p.name for p in (done / "checkpoints").iterdir()) == before


def test_in_training_evaluation_runs_on_rank_0_while_the_others_wait(tmp_path):
    """eval_every under 2 ranks: rank 0 alone holds the evaluator (Fashion-MNIST's shipped feature
    network) and marks best.json; the other rank waits for it at the same step instead of hanging."""
    cfg = write(tmp_path / "gan.yaml", tiny_gan() | {
        "data": {"source": "fashion-mnist", "limit": 512},
        "train": {**tiny_gan()["train"], "eval_every": 10, "eval_n": 200}})
    r = run_cli("train", str(cfg), "--out", str(tmp_path / "r"), "--quiet", "--nproc", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    best = (tmp_path / "r" / "checkpoints" / "best.json").read_text()
    assert '"metric"' in best and (tmp_path / "r" / "checkpoints" / yaml.safe_load(best)["checkpoint"]).is_dir()


def test_devices_this_machine_lacks_are_refused_in_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cfg = write(tmp_path / "gan.yaml", tiny_gan())
    r = run_cli("train", str(cfg), "--out", str(tmp_path / "r"), "--set", "train.device=cuda")
    assert r.returncode == 2 and "no usable CUDA GPU" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = run_cli("train", str(cfg), "--out", str(tmp_path / "r"), "--set", "train.device=gpu")
    assert r.returncode == 2 and "auto, cpu, cuda" in r.stderr
    r = run_cli("train", str(cfg), "--out", str(tmp_path / "r"), "--set", "train.device=auto")
    assert r.returncode == 0, r.stderr  # auto is the CPU here
    r = run_cli("sample", str(tmp_path / "r"), "--device", "cuda:3", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "--device" in r.stderr and not (tmp_path / "x.png").exists(), r.stderr


def test_on_device_places_new_tensors_but_draws_seeded_noise_on_the_cpu():
    """The device context the trainer and aigc.load run family code in, checked on the meta device
    (a device every machine has): factories follow it, a CPU generator's draws are made on the CPU
    (the same numbers as without it) and then moved."""
    from aigc.devices import on_device, to_cpu

    g = torch.Generator().manual_seed(0)
    with on_device("meta"):
        assert torch.zeros(3).device.type == "meta"
        assert torch.randn(2, 2).device.type == "meta"
        assert torch.randn(4, generator=g).device.type == "meta"
        assert torch.zeros(2, device="cpu").device.type == "cpu"   # an explicit device wins
    with on_device("cpu"):
        assert torch.randn(4, generator=torch.Generator().manual_seed(0)).equal(
            torch.randn(4, generator=torch.Generator().manual_seed(0)))
    assert to_cpu({"a": [torch.ones(1)], "b": "x"}) == {"a": [torch.ones(1)], "b": "x"}


BN_PLUGIN = '''
from dataclasses import dataclass
import torch
from torch import nn
from aigc.models.base import GenerativeModel
from aigc.plugins import MODELS

@dataclass
class Cfg:
    norm: bool = True
    def check(self):
        pass

@MODELS.register("bn-autoencoder")
class BNAutoencoder(GenerativeModel):
    """No noise anywhere: the only thing that can tell 2 ranks x b from 1 process x 2b is batch norm."""
    Config = Cfg
    def __init__(self, cfg, meta):
        super().__init__(cfg, meta)
        d = 1
        for s in meta["shape"]:
            d *= s
        norm = nn.BatchNorm1d(16) if cfg.norm else nn.Identity()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(d, 16), norm, nn.ReLU(), nn.Linear(16, d))
    def configure_optimizers(self, train):
        return {"net": torch.optim.Adam(self.net.parameters(), lr=train.lr)}
    def training_step(self, batch, opts, step):
        x = batch["x"].float() / 255
        loss = (self.net(x) - x.flatten(1)).pow(2).mean()
        opts["net"].zero_grad(set_to_none=True)
        loss.backward()
        opts["net"].step()
        return {"loss": loss.detach()}
    @torch.no_grad()
    def sample(self, n, *, generator=None):
        return torch.zeros(n, *self.meta["shape"])
'''


def test_batch_norm_is_the_documented_bounded_difference(tmp_path):
    """A plug-in family (a real entry point, found by every rank) with no noise: without batch norm
    2 ranks x 16 equal 1 process x 32 up to rounding; with it each rank normalises its own 16 (as DDP
    without SyncBatchNorm does), and the weights differ by a bounded amount (docs/ARCHITECTURE.md)."""
    site = tmp_path / "site"
    (site / "bnplug-0.dist-info").mkdir(parents=True)
    (site / "bnplug.py").write_text(BN_PLUGIN)
    (site / "bnplug-0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: bnplug\nVersion: 0\n")
    (site / "bnplug-0.dist-info" / "entry_points.txt").write_text("[aigc.families]\nbn-autoencoder = bnplug\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(Path(__file__).resolve().parents[1] / "src")])}
    gaps = {}
    for norm in (False, True):
        cfg = write(tmp_path / f"{norm}.yaml", {
            "name": "bn", "data": {"source": "digits"}, "model": {"name": "bn-autoencoder", "norm": norm},
            "train": {"steps": 20, "batch_size": 32, "lr": 0.01, "log_every": 10, "sample_every": 0,
                      "ckpt_every": 0, "progress": False, "threads": 1}})
        one, two = tmp_path / f"one-{norm}", tmp_path / f"two-{norm}"
        for out, extra in ((one, []), (two, ["--nproc", "2"])):
            r = run_cli("train", str(cfg), "--out", str(out), "--quiet", *extra, env=env)
            assert r.returncode == 0, r.stderr[-2000:]
        a, b, start = weights(one, 20), weights(two, 20), weights(one, 0)
        keys = [k for k in a if "running" not in k and "num_batches" not in k]
        norm2 = lambda d: sum(float(t.double().square().sum()) for t in d) ** 0.5  # noqa: E731
        # how far the runs are apart, relative to how far training moved the weights (L2 over all)
        gaps[norm] = norm2(a[k] - b[k] for k in keys) / norm2(a[k] - start[k] for k in keys)
    assert gaps[False] < 1e-5, gaps                       # the same step, up to rounding (1.3e-7 seen)
    # per-rank statistics (batch norm over 16 instead of 32): a real difference, 0.26 of the way
    # training moved the weights in 20 steps here, and bounded
    assert 100 * gaps[False] < gaps[True] < 0.5, gaps
