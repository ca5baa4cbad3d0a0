"""Two-process training on the CPU (gloo), launched as on a cluster (``accelerate
launch``): DDP and FSDP train a few steps of ``tiny``, validate and export weights that
load; FSDP also trains the warp head. Small on purpose: each run is a few steps."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
torch.set_num_threads(1)          # test workers share the cores: more threads only contend

from mirrorppr.data import SimConfig, make_tasks, run_tasks  # noqa: E402
from mirrorppr.eval.simface import make_portraits  # noqa: E402


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    make_portraits(root / "portraits")
    inputs = [[str(root / "portraits" / n), n] for n in ("astronaut/original.png", "grace_hopper/original.png")]
    run_tasks(make_tasks("simulate", inputs, SimConfig(size=256, seed=0), 1), root / "sim", workers=1,
              progress=False)
    return root / "sim"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp / "hf")}
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_port()),
           "-m", "mirrorppr", "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_train_validate_and_export_weights_that_load(mode, shards, tmp_path, astronaut, hopper):
    from mirrorppr.model import MirrorPPRPipeline

    run = tmp_path / "run"
    r = _launch(["--config", "tiny", "--data", str(shards), "--out", str(run), "--steps", "2",
                 "--set", "train.log_every=1", "--set", "train.validate_every=2",
                 "--set", f"train.fsdp={'true' if mode == 'fsdp' else 'false'}"], tmp_path)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-6000:])
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [x for x in rows if x["stage"] in ("stage1", "stage2")]
    # One process logs; both trained (the rows say two processes).
    assert len(train) == 4 and all(x["processes"] == 2 for x in train)
    assert {x["stage"] for x in rows} >= {"stage1/val", "stage2/val"}
    state = run / "state" / "stage2"
    if mode == "fsdp":      # the state was saved shard by shard: FSDP really ran
        assert (state / "pytorch_model_fsdp_0").is_dir()
    else:
        assert (state / "model.safetensors").is_file()
    # The exported weights are whole (gathered from the shards) and load.
    pipe = MirrorPPRPipeline.from_pretrained(run / "weights")
    out = pipe(hopper, hopper, astronaut, num_inference_steps=2, output_type="np", progress=False).images
    assert out.shape == (1, 512, 512, 3) and np.isfinite(out).all()
    assert (run / "stage1" / "rformer" / "config.json").is_file()


def test_fsdp_trains_the_warp_head(shards, tmp_path):
    from mirrorppr.model.warp import load_weights

    run = tmp_path / "warp"
    r = _launch(["--config", "warp-tiny", "--data", str(shards), "--out", str(run), "--steps", "2",
                 "--set", "train.log_every=1", "--set", "train.validate_every=2", "--set", "train.fsdp=true"],
                tmp_path)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-6000:])
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["processes"] for x in rows if x["stage"] == "warp"] == [2, 2]
    assert any(x["stage"] == "warp/val" for x in rows)
    assert (run / "state" / "stagewarp" / "pytorch_model_fsdp_0").is_dir()
    model = load_weights(run / "weights")
    assert sum(p.numel() for p in model.parameters()) > 10_000
